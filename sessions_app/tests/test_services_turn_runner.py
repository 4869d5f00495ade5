"""sessions_app/services/turn_runner.py and scheduler.py: `turn_run` drives a turn to one of its
ends against the loopback model server; `turn_schedule` runs it in the background."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from cortex.testing import wait_until
from providers.tests.llm_server import Step, openai_text, openai_tool_call
from sessions_app.models import ChatSession, Message, ToolApproval
from sessions_app.services.conf import TurnBudget
from sessions_app.services.messages import message_post
from sessions_app.services.scheduler import turn_schedule
from sessions_app.services.sessions import node_attach, session_create
from sessions_app.services.turn_runner import turn_run
from sessions_app.tests.conftest import API_KEY, configure_llm

pytestmark = pytest.mark.django_db(transaction=True)


def _chat(user: Any, llm_server: Any, *, policy: str = "auto") -> ChatSession:
    configure_llm(user, llm_server)
    return session_create(actor=user, approval_policy=policy)


def _post(chat: ChatSession, content: str = "hi") -> int:
    _, assistant = message_post(actor=chat.owner, session=chat, content=content, start_turn=False)
    return int(assistant.pk)


def _last(chat: ChatSession) -> Message:
    return Message.objects.filter(session=chat, role="assistant").order_by("-id").first()  # type: ignore[return-value]


async def test_turn_run_streams_a_final_answer(user, llm_server, fast_turns) -> None:  # type: ignore[no-untyped-def]
    chat = await sync_to_async(_chat)(user, llm_server)
    message_id = await sync_to_async(_post)(chat, "Say hi")
    llm_server.add(openai_text(["Hi ", "there"], usage=(3, 2)))
    await turn_run(assistant_message_id=message_id)
    message = await Message.objects.aget(pk=message_id)
    assert (message.status, message.content, message.tokens_in, message.tokens_out) == (
        "done",
        "Hi there",
        3,
        2,
    )
    assert llm_server.requests[0]["body"]["messages"][-1] == {"role": "user", "content": "Say hi"}
    await turn_run(assistant_message_id=message_id)  # not pending any more: nothing happens
    assert len(llm_server.requests) == 1


async def test_turn_run_stops_at_the_step_budget(user, llm_server, fast_turns) -> None:  # type: ignore[no-untyped-def]
    chat = await sync_to_async(_chat)(user, llm_server)
    message_id = await sync_to_async(_post)(chat)
    llm_server.add(openai_tool_call([("c1", "no_such_tool", "{}")]))
    await turn_run(assistant_message_id=message_id, budget=TurnBudget(max_steps=1))
    first = await Message.objects.aget(pk=message_id)
    assert first.status == "done" and first.tool_calls[0]["name"] == "no_such_tool"
    tool = await Message.objects.aget(session=chat, role="tool")
    assert tool.error_code == "unknown_tool"
    last = await sync_to_async(_last)(chat)
    assert (last.status, last.error_code) == ("failed", "step_limit")
    assert len(llm_server.requests) == 1


async def test_turn_run_ends_on_a_provider_error_without_leaking_the_key(
    user, llm_server, fast_turns
) -> None:  # type: ignore[no-untyped-def]
    chat = await sync_to_async(_chat)(user, llm_server)
    message_id = await sync_to_async(_post)(chat)
    llm_server.add(Step("status", status=401, body={"error": {"message": f"bad key {API_KEY}"}}))
    await turn_run(assistant_message_id=message_id)
    message = await Message.objects.aget(pk=message_id)
    assert message.status == "failed"
    assert message.error_code not in ("", "internal_error")
    assert API_KEY not in message.error_message


async def test_turn_run_ends_when_nobody_approves_in_budget(
    user, box, llm_server, fast_turns
) -> None:  # type: ignore[no-untyped-def]
    def setup() -> tuple[ChatSession, int]:
        chat = _chat(user, llm_server, policy="ask")
        node_attach(actor=user, session=chat, node_id="box")
        return chat, _post(chat)

    chat, message_id = await sync_to_async(setup)()
    arguments = json.dumps({"node_id": "box", "command": "ls", "background": True})
    llm_server.add(openai_tool_call([("c1", "mesh_terminal", arguments)]))
    budget = TurnBudget(approval_timeout=0.3, end_on_approval_timeout=True)
    await turn_run(assistant_message_id=message_id, budget=budget)
    message = await Message.objects.aget(pk=message_id)
    assert (message.status, message.error_code) == ("failed", "approval_timed_out")
    approval = await ToolApproval.objects.aget(session=chat)
    assert approval.status == "timed_out"
    assert not await Message.objects.filter(session=chat, role="tool").aexists()


def test_turn_schedule_runs_the_turn_in_the_background(user, llm_server, fast_turns) -> None:  # type: ignore[no-untyped-def]
    chat = _chat(user, llm_server)
    message_id = _post(chat)
    llm_server.add(openai_text(["Later."]))
    turn_schedule(assistant_message_id=message_id)
    done = wait_until(
        lambda: Message.objects.filter(pk=message_id, status="done").first(), timeout=60
    )
    assert done.content == "Later."
