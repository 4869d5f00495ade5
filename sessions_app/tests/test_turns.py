"""Whole turns against a scripted provider on loopback: stream, tools, approvals, failures."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuditEvent
from cortex.testing import wait_until
from providers.tests.llm_server import Step, openai_text, openai_tool_call
from sessions_app.models import ChatSession, Message, ToolApproval, TurnEvent
from sessions_app.tests.conftest import API_KEY, configure_llm

pytestmark = pytest.mark.django_db(transaction=True)


def _post(client: Any, session_id: int, content: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/sessions/{session_id}/messages/", {"content": content}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def _finished(message_id: int) -> Message | None:
    message = Message.objects.get(pk=message_id)
    return message if message.status not in ("pending", "streaming") else None


def _events(session_id: int) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.payload) for e in TurnEvent.objects.filter(session_id=session_id)]


def test_plain_streamed_answer(user, user_client, llm_server, fast_turns):
    configure_llm(user, llm_server)
    llm_server.add(openai_text(["Hel", "lo ", "there"], usage=(11, 7)))
    session = user_client.post("/api/v1/sessions/", {"title": "t"}, format="json").json()
    ids = _post(user_client, session["id"], "Say hello")

    assistant = wait_until(lambda: _finished(ids["assistant_message_id"]))
    assert assistant.status == "done"
    assert assistant.content == "Hello there"
    assert (assistant.tokens_in, assistant.tokens_out) == (11, 7)
    assert assistant.provider == "openai_compatible"
    assert assistant.model == "test-model"
    user_message = Message.objects.get(pk=ids["user_message_id"])
    assert (user_message.role, user_message.content) == ("user", "Say hello")

    sent = llm_server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert sent["body"]["model"] == "test-model"
    assert sent["body"]["stream"] is True
    assert sent["body"]["messages"][0]["role"] == "system"
    assert sent["body"]["messages"][1:] == [{"role": "user", "content": "Say hello"}]

    events = _events(session["id"])
    deltas = "".join(p["delta"] for t, p in events if t == "message.delta")
    assert deltas == "Hello there"
    assert events[-1][0] == "message.done"
    assert events[-1][1]["final"] is True
    assert events[-1][1]["status"] == "done"
    seqs = list(TurnEvent.objects.filter(session_id=session["id"]).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))

    detail = user_client.get(f"/api/v1/sessions/{session['id']}/").json()
    assert (detail["tokens_in"], detail["tokens_out"], detail["tokens_total"]) == (11, 7, 18)
    listing = user_client.get(f"/api/v1/sessions/{session['id']}/messages/").json()
    assert listing["count"] == 2
    assert [m["role"] for m in listing["results"]] == ["user", "assistant"]
    assert API_KEY not in str(listing) and API_KEY not in str(events)


# -- tools --------------------------------------------------------------------------------

from tools.registry import registry  # noqa: E402
from tools.tests.fakes import recording_tool  # noqa: E402

EchoTool = recording_tool(
    "echo_test", risk="read", argument="text", reply="echo: {}", echo_data=True
)
NodeWriteTool = recording_tool(
    "node_write_test", risk="write", argument="path", reply="wrote {}", on_node=True
)
WriteTool = recording_tool("write_test", risk="write", argument="path", reply="wrote {}")


@pytest.fixture
def test_tools():
    EchoTool.calls.clear()
    NodeWriteTool.calls.clear()
    WriteTool.calls.clear()
    with registry.temporarily(EchoTool, NodeWriteTool, WriteTool):
        yield


def test_tool_call_round_trip(user, user_client, llm_server, fast_turns, test_tools):
    configure_llm(user, llm_server)
    llm_server.add(openai_tool_call([("call_a", "echo_test", '{"text": "ping"}')], text="Let me"))
    llm_server.add(openai_text(["The tool said ping."], usage=(30, 6)))
    session = user_client.post("/api/v1/sessions/", {"approval_policy": "auto"}, format="json")
    sid = session.json()["id"]
    ids = _post(user_client, sid, "echo ping")

    wait_until(
        lambda: Message.objects.filter(session_id=sid, status="done", role="assistant").count() == 2
    )
    messages = list(Message.objects.filter(session_id=sid).order_by("id"))
    assert [(m.role, m.status) for m in messages] == [
        ("user", "done"),
        ("assistant", "done"),
        ("tool", "done"),
        ("assistant", "done"),
    ]
    first, tool_msg, final = messages[1], messages[2], messages[3]
    assert first.pk == ids["assistant_message_id"]
    assert first.content == "Let me"
    assert first.tool_calls == [
        {
            "id": "call_a",
            "name": "echo_test",
            "arguments": {"text": "ping"},
            "raw_arguments": '{"text": "ping"}',
        }
    ]
    assert (tool_msg.tool_call_id, tool_msg.tool_name, tool_msg.content) == (
        "call_a",
        "echo_test",
        "echo: ping",
    )
    assert tool_msg.turn_id == ids["user_message_id"] == final.turn_id
    assert final.content == "The tool said ping."
    assert EchoTool.calls == ["ping"]

    second = llm_server.requests[1]["body"]
    assert [t["function"]["name"] for t in second["tools"]].count("echo_test") == 1
    assert second["messages"][-2]["tool_calls"][0]["function"] == {
        "name": "echo_test",
        "arguments": '{"text": "ping"}',
    }
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_a",
        "content": "echo: ping",
    }
    types = [t for t, _ in _events(sid)]
    assert types[0] == "message.delta"
    assert types.index("tool.call") < types.index("tool.result") < len(types) - 1
    assert types[-1] == "message.done"
    detail = user_client.get(f"/api/v1/sessions/{sid}/").json()
    assert (detail["tokens_in"], detail["tokens_out"]) == (50, 11)


def test_bad_tool_calls_go_back_to_the_model(user, user_client, llm_server, fast_turns, test_tools):
    configure_llm(user, llm_server)
    llm_server.add(
        openai_tool_call(
            [
                ("c1", "no_such_tool", "{}"),
                ("c2", "node_write_test", '{"node_id": "elsewhere", "path": "a.txt"}'),
                ("c3", "echo_test", '{"text": "unterminated'),
            ]
        )
    )
    llm_server.add(openai_text(["Sorry."]))
    sid = user_client.post("/api/v1/sessions/", {"approval_policy": "auto"}, format="json").json()[
        "id"
    ]
    _post(user_client, sid, "do things")

    wait_until(
        lambda: Message.objects.filter(session_id=sid, role="assistant", status="done").count() == 2
    )
    tools = list(Message.objects.filter(session_id=sid, role="tool").order_by("id"))
    assert [(m.tool_call_id, m.error_code, m.status) for m in tools] == [
        ("c1", "unknown_tool", "failed"),
        ("c2", "node_not_attached", "failed"),
        ("c3", "invalid_arguments", "failed"),
    ]
    assert EchoTool.calls == [] and NodeWriteTool.calls == []
    assert ToolApproval.objects.count() == 0
    from mesh.models import Task

    assert Task.objects.count() == 0
    replies = [m for m in llm_server.requests[1]["body"]["messages"] if m["role"] == "tool"]
    assert [r["content"].split(")")[0] for r in replies] == [
        "Error (unknown_tool",
        "Error (node_not_attached",
        "Error (invalid_arguments",
    ]


def test_retries_then_timeout(user, user_client, llm_server, fast_turns):
    fast_turns.SESSIONS_LLM_TIMEOUT = 1.0
    configure_llm(user, llm_server)
    llm_server.add(Step("status", status=429, headers={"Retry-After": "0"}))
    llm_server.add(Step("status", status=500))
    llm_server.add(Step("hang"))
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    ids = _post(user_client, sid, "hello?")

    assistant = wait_until(lambda: _finished(ids["assistant_message_id"]), timeout=30)
    assert len(llm_server.requests) == 3
    assert (assistant.status, assistant.error_code) == ("failed", "provider_timeout")
    assert "openai_compatible" in assistant.error_message
    assert API_KEY not in assistant.error_message
    assert Message.objects.get(pk=ids["user_message_id"]).content == "hello?"
    errors = [p for t, p in _events(sid) if t == "error"]
    assert errors == [
        {
            "message_id": assistant.pk,
            "error": {"code": "provider_timeout", "message": assistant.error_message},
        }
    ]


def test_invalid_key_is_not_retried(user, user_client, llm_server, fast_turns):
    configure_llm(user, llm_server)
    llm_server.add(
        Step("status", status=401, body={"error": {"message": f"Incorrect API key {API_KEY}"}})
    )
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    ids = _post(user_client, sid, "hi")
    assistant = wait_until(lambda: _finished(ids["assistant_message_id"]))
    assert len(llm_server.requests) == 1
    assert (assistant.status, assistant.error_code) == ("failed", "invalid_key")
    assert API_KEY not in assistant.error_message
    assert API_KEY not in str(_events(sid))


def test_user_cancels_mid_turn(user, user_client, llm_server, fast_turns):
    configure_llm(user, llm_server)
    llm_server.add(openai_text([f"word{i} " for i in range(200)], delay=0.05))
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    ids = _post(user_client, sid, "tell me a long story")
    wait_until(lambda: TurnEvent.objects.filter(session_id=sid, type="message.delta").exists())

    response = user_client.post(f"/api/v1/sessions/{sid}/cancel/")
    assert response.status_code == 202
    assert response.json() == {"message_id": ids["assistant_message_id"], "status": "cancelling"}
    assistant = wait_until(lambda: _finished(ids["assistant_message_id"]))
    assert (assistant.status, assistant.error_code) == ("cancelled", "cancelled")
    assert assistant.content.startswith("word0 ")
    assert len(assistant.content.split()) < 200
    done = [p for t, p in _events(sid) if t == "message.done"]
    assert done[-1]["status"] == "cancelled"
    again = user_client.post(f"/api/v1/sessions/{sid}/cancel/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "no_turn_running"


def test_approval_times_out_and_is_denied(user, user_client, llm_server, fast_turns, test_tools):
    fast_turns.SESSIONS_APPROVAL_TIMEOUT = 0.5
    configure_llm(user, llm_server)
    llm_server.add(openai_tool_call([("w1", "write_test", '{"path": "notes.txt"}')]))
    llm_server.add(openai_text(["Nobody approved, so I did not write it."]))
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    ids = _post(user_client, sid, "write notes")

    wait_until(
        lambda: Message.objects.filter(session_id=sid, role="assistant", status="done").count() == 2
    )
    approval = ToolApproval.objects.get(session_id=sid)
    assert (approval.status, approval.tool_name, approval.arguments) == (
        "timed_out",
        "write_test",
        {"path": "notes.txt"},
    )
    assert approval.message_id == ids["assistant_message_id"]
    assert WriteTool.calls == []
    tool_msg = Message.objects.get(session_id=sid, role="tool")
    assert tool_msg.error_code == "approval_timed_out"
    audit = AuditEvent.objects.get(action="sessions.approval.timed_out")
    assert audit.target_id == str(approval.pk)
    assert audit.details["message_id"] == ids["assistant_message_id"]
    assert audit.details["turn_message_id"] == ids["user_message_id"]
    asked = [p for t, p in _events(sid) if t == "tool.approval_required"]
    assert asked[0]["tool"] == "write_test"
    assert asked[0]["arguments"] == {"path": "notes.txt"}
    assert asked[0]["approval_id"] == approval.pk


def test_approval_granted_runs_the_tool(user, user_client, llm_server, fast_turns, test_tools):
    configure_llm(user, llm_server)
    llm_server.add(openai_tool_call([("w1", "write_test", '{"path": "a.txt"}')]))
    llm_server.add(openai_text(["Done."]))
    sid = user_client.post("/api/v1/sessions/", {"approval_policy": "ask"}, format="json").json()[
        "id"
    ]
    ids = _post(user_client, sid, "write a.txt")

    pending = wait_until(
        lambda: user_client.get(f"/api/v1/sessions/{sid}/approvals/").json()["results"]
    )
    assert [(p["tool"], p["arguments"], p["status"]) for p in pending] == [
        ("write_test", {"path": "a.txt"}, "pending")
    ]
    response = user_client.post(f"/api/v1/sessions/{sid}/approvals/{pending[0]['id']}/approve/")
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    wait_until(
        lambda: Message.objects.filter(session_id=sid, role="assistant", status="done").count() == 2
    )
    assert WriteTool.calls == ["a.txt"]
    audit = AuditEvent.objects.get(action="sessions.approval.approved")
    assert audit.actor_id == user.pk
    assert audit.details["message_id"] == ids["assistant_message_id"]
    again = user_client.post(f"/api/v1/sessions/{sid}/approvals/{pending[0]['id']}/deny/")
    assert again.status_code == 409


def test_restart_mid_turn_marks_interrupted(user, user_client, fast_turns):
    """A runner that died (its process restarted) stops beating; the sweeper ends the turn (a
    read never writes)."""
    from datetime import timedelta

    from django.utils import timezone

    from cortex.sweeps import sweeps_run

    session = ChatSession.objects.create(owner=user, title="t")
    asked = Message.objects.create(session=session, role="user", content="still there?")
    stale = Message.objects.create(
        session=session,
        turn=asked,
        role="assistant",
        status="streaming",
        content="Half an ans",
        heartbeat_at=timezone.now() - timedelta(seconds=120),
    )
    fresh_session = ChatSession.objects.create(owner=user, title="busy")
    fresh = Message.objects.create(
        session=fresh_session, role="assistant", status="streaming", heartbeat_at=timezone.now()
    )

    for path in ("/api/v1/sessions/", f"/api/v1/sessions/{session.pk}/"):
        assert user_client.get(path).status_code == 200
    listing = user_client.get(f"/api/v1/sessions/{session.pk}/messages/").json()
    assert [m["status"] for m in listing["results"]] == ["done", "streaming"]
    stale.refresh_from_db()
    assert stale.status == "streaming"

    assert sweeps_run()["sessions.turns_reap_stale"] == 1
    listing = user_client.get(f"/api/v1/sessions/{session.pk}/messages/").json()
    assert [(m["role"], m["status"], m["error_code"]) for m in listing["results"]] == [
        ("user", "done", ""),
        ("assistant", "failed", "interrupted"),
    ]
    assert listing["results"][1]["content"] == "Half an ans"
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert fresh.status == "streaming"
    assert [t for t, _ in _events(session.pk)] == ["error", "message.done"]


NodeCommandTool = recording_tool(
    "node_command_test", risk="read", argument="command", reply="looked at {}", on_node=True
)


def test_denied_call_does_not_run(user, user_client, llm_server, fast_turns, test_tools):
    configure_llm(user, llm_server)
    llm_server.add(openai_tool_call([("w1", "write_test", '{"path": "b.txt"}')]))
    llm_server.add(openai_text(["Understood, I did not write it."]))
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    ids = _post(user_client, sid, "write b.txt")
    approval = wait_until(lambda: ToolApproval.objects.filter(session_id=sid).first())
    response = user_client.post(f"/api/v1/sessions/{sid}/approvals/{approval.pk}/deny/")
    assert (response.status_code, response.json()["status"]) == (200, "denied")
    wait_until(
        lambda: Message.objects.filter(session_id=sid, role="assistant", status="done").count() == 2
    )
    assert WriteTool.calls == []
    assert Message.objects.get(session_id=sid, role="tool").error_code == "approval_denied"
    audit = AuditEvent.objects.get(action="sessions.approval.denied")
    assert (audit.actor_id, audit.details["message_id"], audit.details["tool"]) == (
        user.pk,
        ids["assistant_message_id"],
        "write_test",
    )


def test_step_limit_ends_the_turn(user, user_client, llm_server, fast_turns, test_tools):
    fast_turns.SESSIONS_MAX_STEPS = 2
    configure_llm(user, llm_server)
    llm_server.add(openai_tool_call([("e1", "echo_test", '{"text": "1"}')]))
    llm_server.add(openai_tool_call([("e2", "echo_test", '{"text": "2"}')]))
    sid = user_client.post("/api/v1/sessions/", {"approval_policy": "auto"}, format="json").json()[
        "id"
    ]
    _post(user_client, sid, "loop")
    last = wait_until(
        lambda: Message.objects.filter(session_id=sid, role="assistant", status="failed").first()
    )
    assert last.error_code == "step_limit"
    assert EchoTool.calls == ["1", "2"]
    assert len(llm_server.requests) == 2
    assert [m.status for m in Message.objects.filter(session_id=sid, role="assistant")] == [
        "done",
        "done",
        "failed",
    ]


def test_deadline_stops_a_slow_answer(user, user_client, llm_server, fast_turns):
    fast_turns.SESSIONS_TURN_DEADLINE = 0.6
    configure_llm(user, llm_server)
    llm_server.add(openai_text(["slow "] * 100, delay=0.05))
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    ids = _post(user_client, sid, "take your time")
    assistant = wait_until(lambda: _finished(ids["assistant_message_id"]))
    assert (assistant.status, assistant.error_code) == ("failed", "deadline_exceeded")


def test_sensitive_command_asks_even_for_a_read_tool(
    user, staff_user, user_client, llm_server, fast_turns
):
    from django.contrib.auth.models import Group

    from mesh import services as mesh_services

    node, _ = mesh_services.node_create(actor=staff_user, node_id="box", display_name="Box")
    group = Group.objects.create(name="team")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=node, group=group)
    NodeCommandTool.calls.clear()
    configure_llm(user, llm_server)
    llm_server.add(
        openai_tool_call(
            [
                ("s1", "node_command_test", '{"node_id": "box", "command": "ls -l"}'),
                ("s2", "node_command_test", '{"node_id": "box", "command": "rm -rf build"}'),
            ]
        )
    )
    llm_server.add(openai_text(["ok"]))
    with registry.temporarily(NodeCommandTool):
        sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
        user_client.post(f"/api/v1/sessions/{sid}/nodes/", {"node_id": "box"}, format="json")
        _post(user_client, sid, "clean up")
        approval = wait_until(lambda: ToolApproval.objects.filter(session_id=sid).first())
        assert (approval.tool_call_id, approval.reason, approval.node_id) == (
            "s2",
            "sensitive_command",
            "box",
        )
        assert NodeCommandTool.calls == ["ls -l"]
        user_client.post(f"/api/v1/sessions/{sid}/approvals/{approval.pk}/approve/")
        wait_until(
            lambda: (
                Message.objects.filter(session_id=sid, role="assistant", status="done").count() == 2
            )
        )
    assert NodeCommandTool.calls == ["ls -l", "rm -rf build"]
    assert ToolApproval.objects.filter(session_id=sid).count() == 1


def test_no_provider_configured(user, user_client, fast_turns):
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    ids = _post(user_client, sid, "anyone?")
    assistant = wait_until(lambda: _finished(ids["assistant_message_id"]))
    assert (assistant.status, assistant.error_code) == ("failed", "provider_not_configured")
    assert Message.objects.get(pk=ids["user_message_id"]).content == "anyone?"
    assert [t for t, _ in _events(sid)] == ["error", "message.done"]


def test_retry_after_a_tool_ran_does_not_run_it_again(
    user, user_client, llm_server, fast_turns, test_tools
):
    configure_llm(user, llm_server)
    llm_server.add(openai_tool_call([("once", "echo_test", '{"text": "only once"}')]))
    llm_server.add(Step("status", status=503, headers={"Retry-After": "0"}))
    llm_server.add(Step("status", status=429, headers={"Retry-After": "0"}))
    llm_server.add(openai_text(["Ran it once."]))
    sid = user_client.post("/api/v1/sessions/", {"approval_policy": "auto"}, format="json").json()[
        "id"
    ]
    _post(user_client, sid, "echo once")
    wait_until(
        lambda: Message.objects.filter(session_id=sid, role="assistant", status="done").count() == 2
    )
    assert EchoTool.calls == ["only once"]
    assert len(llm_server.requests) == 4
    assert Message.objects.filter(session_id=sid, role="tool").count() == 1
    for request in llm_server.requests[1:]:
        tool_replies = [m for m in request["body"]["messages"] if m["role"] == "tool"]
        assert tool_replies == [
            {"role": "tool", "tool_call_id": "once", "content": "echo: only once"}
        ]
