"""sessions_app/services/turn_steps.py, step by step: each database step of a turn, called
directly as the runner calls it, with the state transitions and frames it records.

The user's provider points at the loopback model server (never called by these steps); the
node is real in the database and never connects, so a dispatched task stays queued."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mesh.models import Task
from providers.llm import ToolCallDelta
from sessions_app.models import ChatSession, Message, TurnEvent
from sessions_app.services.approval_rules import approval_rule_create
from sessions_app.services.approvals import approval_open
from sessions_app.services.conf import TurnBudget
from sessions_app.services.messages import message_post, turn_cancel
from sessions_app.services.sessions import node_attach, session_create
from sessions_app.services.turn_state import PreparedCall, TurnState
from sessions_app.services.turn_steps import (
    assistant_record,
    delta_store,
    step_next,
    tool_call_prepare,
    tool_execute,
    tool_result_store,
    turn_begin,
    turn_fail,
    turn_heartbeat,
)
from sessions_app.tests.conftest import configure_llm
from tools.base import ToolResult

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(user, box, llm_server) -> ChatSession:  # type: ignore[no-untyped-def]
    configure_llm(user, llm_server)
    session = session_create(actor=user, approval_policy="ask")
    node_attach(actor=user, session=session, node_id="box", working_dir="/srv")
    return session


def _begin(chat: ChatSession, budget: TurnBudget | None = None) -> TurnState:
    _, assistant = message_post(actor=chat.owner, session=chat, content="hi", start_turn=False)
    state, frames = turn_begin(message_id=assistant.pk, budget=budget)
    assert state is not None and frames == []
    return state


def _call(name: str = "mesh_terminal", call_id: str = "c1", **arguments: Any) -> dict[str, Any]:
    import json

    return {
        "id": call_id,
        "name": name,
        "arguments": arguments,
        "raw_arguments": json.dumps(arguments),
    }


def _types(chat: ChatSession) -> list[str]:
    return list(
        TurnEvent.objects.filter(session=chat).order_by("seq").values_list("type", flat=True)
    )


# -- begin, heartbeat -------------------------------------------------------------------------


def test_turn_begin_claims_the_pending_message_once(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat, TurnBudget(max_steps=2, deadline=5.0, max_tokens=100))
    message = Message.objects.get(pk=state.message_id)
    assert (message.status, message.provider, message.model) == (
        "streaming",
        "openai_compatible",
        "test-model",
    )
    assert (state.session_id, state.user, state.turn_id) == (chat.pk, chat.owner, message.turn_id)
    assert (state.max_steps, state.max_tokens, state.approval_policy) == (2, 100, "ask")
    assert state.deadline <= time.monotonic() + 5.0
    assert turn_begin(message_id=state.message_id) == (None, [])  # not pending any more


def test_turn_begin_without_a_provider_fails_the_message(user) -> None:  # type: ignore[no-untyped-def]
    chat = session_create(actor=user)
    _, assistant = message_post(actor=user, session=chat, content="hi", start_turn=False)
    assert turn_begin(message_id=assistant.pk) == (None, [])
    failed = Message.objects.get(pk=assistant.pk)
    assert (failed.status, failed.error_code) == ("failed", "provider_not_configured")
    assert _types(chat) == ["error", "message.done"]


def test_turn_heartbeat_beats_and_reports_a_cancel(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    old = timezone.now() - timedelta(minutes=5)
    Message.objects.filter(pk=state.message_id).update(heartbeat_at=old)
    assert turn_heartbeat(state=state, beat=False) is False
    assert Message.objects.get(pk=state.message_id).heartbeat_at == old
    assert turn_heartbeat(state=state) is False
    assert Message.objects.get(pk=state.message_id).heartbeat_at > old
    turn_cancel(actor=chat.owner, session=chat)
    assert turn_heartbeat(state=state, beat=False) is True


# -- the model's answer -----------------------------------------------------------------------


def test_delta_store_keeps_the_text_and_numbers_the_delta(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    first = delta_store(state=state, content="Hel", delta="Hel")
    second = delta_store(state=state, content="Hello", delta="lo")
    assert [(f["type"], f["delta"]) for f in first + second] == [
        ("message.delta", "Hel"),
        ("message.delta", "lo"),
    ]
    assert second[0]["seq"] == first[0]["seq"] + 1
    assert Message.objects.get(pk=state.message_id).content == "Hello"


def test_assistant_record_final_answer_ends_the_turn(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    stored, frames = assistant_record(
        state=state, content="Done.", calls=[], tokens_in=11, tokens_out=7, latency_ms=30
    )
    assert stored == []
    message = Message.objects.get(pk=state.message_id)
    assert (message.status, message.content, message.tokens_in, message.tokens_out) == (
        "done",
        "Done.",
        11,
        7,
    )
    assert message.finished_at is not None
    assert [(f["type"], f["final"], f["content"]) for f in frames] == [
        ("message.done", True, "Done.")
    ]
    chat.refresh_from_db()
    assert (chat.tokens_in, chat.tokens_out) == (11, 7)


def test_assistant_record_tool_calls_get_unique_ids_and_parsed_arguments(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    calls = [
        ToolCallDelta(id="same", name="mesh_terminal", arguments='{"node_id": "box"}'),
        ToolCallDelta(id="same", name="mesh_terminal", arguments="{not json"),
        ToolCallDelta(id="", name="mesh_files", arguments="[1, 2]"),
    ]
    stored, frames = assistant_record(
        state=state, content="", calls=calls, tokens_in=1, tokens_out=2, latency_ms=5
    )
    assert frames == []  # the step goes on with the calls
    assert Message.objects.get(pk=state.message_id).status == "streaming"
    ids = [c["id"] for c in stored]
    assert ids[0] == "same" and len(set(ids)) == 3
    assert all(i.startswith("call_") for i in ids[1:])
    assert [c["arguments"] for c in stored] == [{"node_id": "box"}, None, None]
    assert stored[1]["raw_arguments"] == "{not json"
    assert Message.objects.get(pk=state.message_id).tool_calls == stored


# -- tool calls -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (_call(name="no_such_tool", node_id="box"), "unknown_tool"),
        ({**_call(), "arguments": None, "raw_arguments": "{bad"}, "invalid_arguments"),
        (_call(node_id="elsewhere", command="ls"), "node_not_attached"),
    ],
)
def test_tool_call_prepare_refuses_before_anything_runs(chat, call, code) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    prepared, frames = tool_call_prepare(state=state, call=call)
    assert prepared.result is not None and prepared.result.error_code == code
    assert [f["type"] for f in frames] == ["tool.call"]
    assert frames[0]["tool_call_id"] == "c1"


def test_tool_call_prepare_asks_for_risky_and_sensitive_calls(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    risky, _ = tool_call_prepare(state=state, call=_call(node_id="box", command="ls"))
    assert (risky.needs_approval, risky.reason, risky.node_id, risky.result) == (
        True,
        "risk:exec",
        "box",
        None,
    )
    sensitive, _ = tool_call_prepare(
        state=state, call=_call(call_id="c2", node_id="box", command="rm -rf build")
    )
    assert (sensitive.needs_approval, sensitive.reason) == (True, "sensitive_command")
    ChatSession.objects.filter(pk=chat.pk).update(approval_policy="auto")
    auto, _ = tool_call_prepare(state=state, call=_call(call_id="c3", node_id="box", command="ls"))
    assert auto.needs_approval is False and state.approval_policy == "auto"
    sensitive, _ = tool_call_prepare(
        state=state, call=_call(call_id="c4", node_id="box", command="rm -rf build")
    )
    assert sensitive.needs_approval is True  # whatever the session's policy


def test_tool_call_prepare_applies_a_standing_rule(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    approval, _ = approval_open(
        session_id=chat.pk,
        message_id=state.message_id,
        tool_call_id="earlier",
        tool_name="mesh_terminal",
        node_id="box",
        arguments={"node_id": "box", "command": "git status"},
        reason="risk:exec",
        timeout=60,
    )
    rule = approval_rule_create(actor=chat.owner, approval=approval, remember="session")
    prepared, _ = tool_call_prepare(state=state, call=_call(node_id="box", command="git status"))
    assert (prepared.needs_approval, prepared.reason) == (False, f"rule:{rule.pk}")
    rule.refresh_from_db()
    assert rule.use_count == 1


def test_tool_execute_dispatches_under_the_users_grants(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    call = _call(node_id="box", command="echo hi", background=True)
    prepared, _ = tool_call_prepare(state=state, call=call)
    result = tool_execute(state=state, prepared=prepared)
    assert result.ok, result.text
    (task,) = Task.objects.all()
    assert [str(task.pk)] == result.task_ids
    assert (task.chat_session_id, task.tool_call_id, task.requested_by) == (
        chat.pk,
        "c1",
        chat.owner,
    )
    assert task.payload["command"] == "echo hi"

    bad = PreparedCall(call_id="c9", name="mesh_terminal", arguments={"node_id": "box"})
    refused = tool_execute(state=state, prepared=bad)
    assert not refused.ok and refused.error_code
    assert Task.objects.count() == 1


def test_tool_result_store_records_the_tool_message_once(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    prepared = PreparedCall(
        call_id="c1", name="mesh_terminal", arguments={}, node_id="box", reason="rule:3"
    )
    frames = tool_result_store(state=state, prepared=prepared, result=ToolResult(text="hi\n"))
    tool = Message.objects.get(role="tool")
    assert (tool.tool_call_id, tool.status, tool.content, tool.turn_id) == (
        "c1",
        "done",
        "hi\n",
        state.turn_id,
    )
    (frame,) = frames
    assert (frame["type"], frame["ok"], frame["allowed_by_rule"], frame["text"]) == (
        "tool.result",
        True,
        True,
        "hi\n",
    )
    failed = tool_result_store(
        state=state,
        prepared=PreparedCall(call_id="c2", name="x", arguments=None),
        result=ToolResult.error("nope", "No."),
    )
    assert failed[0]["ok"] is False and failed[0]["error_code"] == "nope"
    assert Message.objects.get(tool_call_id="c2").status == "failed"
    # The same call id is never run twice.
    again, _ = tool_call_prepare(state=state, call=_call(node_id="box", command="ls"))
    assert again.result is not None and again.result.error_code == "already_ran"


# -- steps and the end ------------------------------------------------------------------------


def test_step_next_closes_the_step_and_opens_the_next(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    first = state.message_id
    (frame,) = step_next(state=state)
    assert (frame["type"], frame["final"], frame["message_id"]) == ("message.done", False, first)
    assert Message.objects.get(pk=first).status == "done"
    assert state.message_id != first
    nxt = Message.objects.get(pk=state.message_id)
    assert (nxt.role, nxt.status, nxt.turn_id, nxt.model) == (
        "assistant",
        "streaming",
        state.turn_id,
        "test-model",
    )


def test_turn_fail_ends_the_current_message_once(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    turn_fail(state=state, code="step_limit", text="Too many steps.")
    message = Message.objects.get(pk=state.message_id)
    assert (message.status, message.error_code) == ("failed", "step_limit")
    turn_fail(state=state, code="other", text="Again.")  # an ended message stays as it ended
    assert Message.objects.get(pk=state.message_id).error_code == "step_limit"
    assert _types(chat).count("message.done") == 1


def test_turn_fail_on_cancel_cancels_the_turns_tasks(chat) -> None:  # type: ignore[no-untyped-def]
    state = _begin(chat)
    prepared, _ = tool_call_prepare(
        state=state, call=_call(node_id="box", command="sleep 100", background=True)
    )
    result = tool_execute(state=state, prepared=prepared)
    tool_result_store(state=state, prepared=prepared, result=result)
    state.stop_reason = "cancelled"
    turn_fail(state=state, code="cancelled", text="Stopped.", status="cancelled")
    assert Message.objects.get(pk=state.message_id).status == "cancelled"
    assert Task.objects.get().status == "cancelled"
