"""sessions_app/services/turn_prompt.py: what the model is told — the nodes attached right now,
the tools those nodes can take, and a history in which every call has an answer."""

from __future__ import annotations

import pytest

from mesh import services as mesh_services
from mesh.services.presence import node_hello
from providers.llm import LLMSettings, ToolCallDelta
from sessions_app.models import ChatSession, Message, SessionNode
from sessions_app.services.messages import message_post
from sessions_app.services.sessions import node_attach, node_detach, session_create
from sessions_app.services.turn_prompt import SYSTEM_PROMPT, tool_context, tool_specs, turn_context
from sessions_app.services.turn_state import PreparedCall, TurnState
from sessions_app.services.turn_steps import assistant_record, tool_result_store
from tools.base import ToolResult

pytestmark = pytest.mark.django_db


@pytest.fixture
def state(user, staff_user, box) -> TurnState:  # type: ignore[no-untyped-def]
    mesh_services.node_update(actor=staff_user, node=box, data={"description": "The build box."})
    chat = session_create(actor=user)
    _, assistant = message_post(actor=user, session=chat, content="list files", start_turn=False)
    return TurnState(
        session_id=chat.pk,
        user=user,
        turn_id=assistant.turn_id or 0,
        message_id=assistant.pk,
        llm=LLMSettings(provider="openai_compatible", model="m"),
        approval_policy="ask",
        deadline=0.0,
    )


def _names(state: TurnState) -> set[str]:
    return {spec["function"]["name"] for spec in tool_specs(state=state)}


def test_tool_context_sees_the_nodes_attached_now(state) -> None:  # type: ignore[no-untyped-def]
    assert tool_context(state=state).attached_nodes == {}
    chat = ChatSession.objects.get(pk=state.session_id)
    attachment = node_attach(actor=state.user, session=chat, node_id="box", working_dir="/srv")
    context = tool_context(state=state, call_id="c1", confirmed=True)
    assert context.attached_nodes == {"box": "/srv"}
    assert (context.user, context.chat_session_id, context.message_id) == (
        state.user,
        state.session_id,
        state.message_id,
    )
    assert (context.tool_call_id, context.confirmed) == ("c1", True)
    assert tool_context(state=state).confirmed is False  # only for a call a person approved
    node_detach(actor=state.user, attachment=attachment)
    assert tool_context(state=state).attached_nodes == {}


def test_tool_specs_offer_node_tools_only_with_a_capable_attached_node(state) -> None:  # type: ignore[no-untyped-def]
    bare = _names(state)
    assert "mesh_terminal" not in bare
    chat = ChatSession.objects.get(pk=state.session_id)
    node_attach(actor=state.user, session=chat, node_id="box")
    node_hello(node_id="box", connection_id="c", capabilities={"shell": True, "files": True})
    with_node = _names(state)
    assert {"mesh_terminal", "mesh_files"} <= with_node
    assert bare < with_node
    spec = next(s for s in tool_specs(state=state) if s["function"]["name"] == "mesh_terminal")
    assert spec["type"] == "function" and spec["function"]["parameters"]["type"] == "object"


def test_turn_context_lists_the_nodes_and_answers_every_call(state) -> None:  # type: ignore[no-untyped-def]
    system, history = turn_context(state=state)
    assert system.startswith(SYSTEM_PROMPT)
    assert "No nodes are attached to this session" in system
    assert history == [{"role": "user", "content": "list files"}]

    chat = ChatSession.objects.get(pk=state.session_id)
    node_attach(actor=state.user, session=chat, node_id="box", working_dir="/srv")
    calls = [
        ToolCallDelta(id="a", name="mesh_terminal", arguments='{"node_id": "box"}'),
        ToolCallDelta(id="b", name="mesh_terminal", arguments='{"node_id": "box"}'),
    ]
    assistant_record(state=state, content="", calls=calls, tokens_in=1, tokens_out=1, latency_ms=1)
    tool_result_store(
        state=state,
        prepared=PreparedCall(call_id="a", name="mesh_terminal", arguments={}),
        result=ToolResult(text="file.txt"),
    )
    later = Message.objects.create(
        session_id=state.session_id, role="assistant", status="streaming"
    )
    state.message_id = later.pk
    system, history = turn_context(state=state)
    assert "- box (Box): status offline; working directory /srv. The build box." in system
    assert [h["role"] for h in history] == ["user", "assistant", "tool", "tool"]
    assert history[1]["tool_calls"][0] == {
        "id": "a",
        "name": "mesh_terminal",
        "arguments": '{"node_id": "box"}',
    }
    answers = {h["tool_call_id"]: h["content"] for h in history if h["role"] == "tool"}
    assert answers["a"] == "file.txt"
    assert answers["b"] == "Error (not_run): the call did not run; the turn ended."
    assert SessionNode.objects.count() == 1
