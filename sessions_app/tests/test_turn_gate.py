"""Chat and the gate: sensitive commands always wait for a person (even with `auto`), an
approved one is dispatched confirmed, and a task that never reached its node reads back to the
model as not delivered (node offline), never as still running."""

from __future__ import annotations

from typing import Any

import pytest

from cortex.testing import wait_until
from mesh.models import Task
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.models import Message, ToolApproval
from sessions_app.tests.conftest import configure_llm

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def box(user, staff_user) -> Any:  # type: ignore[no-untyped-def]
    """An offline node the user may use (it never connected)."""
    from django.contrib.auth.models import Group

    from mesh import services as mesh_services

    node, _ = mesh_services.node_create(actor=staff_user, node_id="box", display_name="Box")
    group = Group.objects.create(name="team")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=node, group=group)
    return node


def _session(client: Any, policy: str) -> int:
    sid = client.post("/api/v1/sessions/", {"approval_policy": policy}, format="json").json()["id"]
    response = client.post(f"/api/v1/sessions/{sid}/nodes/", {"node_id": "box"}, format="json")
    assert response.status_code in (200, 201), response.content
    return sid


def _post(client: Any, sid: int, content: str) -> None:
    response = client.post(f"/api/v1/sessions/{sid}/messages/", {"content": content}, format="json")
    assert response.status_code == 202, response.content


def _tool_reply(llm_server: Any, index: int) -> str:
    """What the model was told about its tool call, in request `index`."""
    messages = llm_server.requests[index]["body"]["messages"]
    return next(m["content"] for m in reversed(messages) if m["role"] == "tool")


def _terminal(call_id: str, command: str, **extra: Any) -> tuple[str, str, str]:
    import json

    arguments = {"node_id": "box", "command": command, "background": True, **extra}
    return (call_id, "mesh_terminal", json.dumps(arguments))


def test_auto_session_still_asks_for_a_sensitive_command_and_dispatches_it_confirmed(
    user, user_client, llm_server, fast_turns, box
):
    configure_llm(user, llm_server)
    llm_server.add(openai_tool_call([_terminal("plain", "ls -l")]))
    llm_server.add(openai_tool_call([_terminal("wipe", "rm -rf build")]))
    llm_server.add(openai_text(["done"]))
    sid = _session(user_client, "auto")
    _post(user_client, sid, "clean the build")

    approval = wait_until(lambda: ToolApproval.objects.filter(session_id=sid).first())
    assert (approval.tool_call_id, approval.reason, approval.node_id) == (
        "wipe",
        "sensitive_command",
        "box",
    )
    # The plain command ran without asking, and without a confirmation mark.
    [plain] = Task.objects.filter(tool_call_id="plain")
    assert plain.payload == {"command": "ls -l"}
    assert not Task.objects.filter(tool_call_id="wipe").exists()

    user_client.post(f"/api/v1/sessions/{sid}/approvals/{approval.pk}/approve/")
    wait_until(
        lambda: Message.objects.filter(session_id=sid, role="assistant", status="done").count() == 3
    )
    [wiped] = Task.objects.filter(tool_call_id="wipe")
    assert wiped.payload == {"command": "rm -rf build", "confirmed": True}
    assert ToolApproval.objects.filter(session_id=sid).count() == 1


def test_denied_sensitive_command_in_auto_session_queues_nothing(
    user, user_client, llm_server, fast_turns, box
):
    configure_llm(user, llm_server)
    llm_server.add(openai_tool_call([_terminal("wipe", "sudo rm -rf /srv/cache")]))
    llm_server.add(openai_text(["ok, not doing it"]))
    sid = _session(user_client, "auto")
    _post(user_client, sid, "clear the cache")
    approval = wait_until(lambda: ToolApproval.objects.filter(session_id=sid).first())
    assert approval.reason == "sensitive_command"
    user_client.post(f"/api/v1/sessions/{sid}/approvals/{approval.pk}/deny/")
    wait_until(
        lambda: Message.objects.filter(session_id=sid, role="assistant", status="done").count() == 2
    )
    assert Task.objects.count() == 0
    assert Message.objects.get(session_id=sid, role="tool").error_code == "approval_denied"


def test_model_is_told_the_node_is_offline_and_the_task_was_not_delivered(
    user, user_client, llm_server, fast_turns, box
):
    fast_turns.MESH_TASK_DELIVERY_TIMEOUT = 1.0
    configure_llm(user, llm_server)
    llm_server.add(
        openai_tool_call(
            [("run", "mesh_terminal", '{"node_id": "box", "command": "uptime", "timeout": 5}')]
        )
    )
    llm_server.add(openai_text(["The node is offline."]))
    sid = _session(user_client, "auto")
    _post(user_client, sid, "how long has box been up?")
    wait_until(
        lambda: Message.objects.filter(session_id=sid, role="assistant", status="done").count() == 2
    )
    [waited] = Task.objects.filter(tool_call_id="run")
    assert (waited.status, waited.error_code) == ("timed_out", "not_delivered")
    told = _tool_reply(llm_server, 1)
    assert told == (
        f"[box] task {waited.pk}: timed_out, not_delivered\n"
        "error: The node did not take the task before its delivery deadline (it was offline or "
        "busy); the task was never delivered and will not run.\n"
        "(not delivered: node 'box' is offline; the command never ran and will not run)"
    )
    assert "still running" not in told
