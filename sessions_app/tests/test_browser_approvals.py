"""Approvals for the browser tool in whole turns (scripted provider on loopback, no node needed:
nothing here reaches one). Typing asks under "ask"; JavaScript asks under "auto" too; a script the
node's policy forbids is refused without asking anyone."""

from __future__ import annotations

from typing import Any

import pytest

from cortex.testing import wait_until
from mesh.models import Node, Task
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.models import Message, ToolApproval
from sessions_app.tests.conftest import configure_llm

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web(user, staff_user) -> Node:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    from mesh import services as mesh_services

    node, _ = mesh_services.node_create(
        actor=staff_user, node_id="web", display_name="Web", skill_config={"browser": True}
    )
    Node.objects.filter(pk=node.pk).update(capabilities={"browser": True})
    group = Group.objects.create(name="team")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=node, group=group)
    return node


def _turn(user_client: Any, llm_server: Any, policy: str, arguments: str) -> int:
    llm_server.add(openai_tool_call([("b1", "browser", arguments)]))
    llm_server.add(openai_text(["ok"]))
    sid = user_client.post("/api/v1/sessions/", {"approval_policy": policy}, format="json")
    sid = sid.json()["id"]
    user_client.post(f"/api/v1/sessions/{sid}/nodes/", {"node_id": "web"}, format="json")
    response = user_client.post(
        f"/api/v1/sessions/{sid}/messages/", {"content": "go"}, format="json"
    )
    assert response.status_code == 202
    return sid


def _answered(sid: int) -> None:
    """The turn ends with the model's last answer (no runner outlives the test)."""
    wait_until(
        lambda: Message.objects.filter(
            session_id=sid, role="assistant", status="done", content="ok"
        ).exists()
    )


def test_a_script_the_node_forbids_is_refused_without_asking(
    user, user_client, llm_server, fast_turns, web
) -> None:  # type: ignore[no-untyped-def]
    configure_llm(user, llm_server)
    sid = _turn(
        user_client, llm_server, "auto", '{"node_id": "web", "action": "evaluate", "script": "1"}'
    )
    tool = wait_until(lambda: Message.objects.filter(session_id=sid, role="tool").first())
    assert tool.error_code == "evaluate_not_allowed"
    _answered(sid)
    assert not ToolApproval.objects.exists()
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("policy", "arguments", "reason"),
    [
        ("auto", '{"node_id": "web", "action": "evaluate", "script": "1"}', "browser_evaluate"),
        ("ask", '{"node_id": "web", "action": "type", "ref": "e2", "text": "x"}', "risk:write"),
    ],
)
def test_scripts_always_ask_and_typing_asks_under_ask(
    user, user_client, llm_server, fast_turns, web, policy, arguments, reason
) -> None:  # type: ignore[no-untyped-def]
    Node.objects.filter(pk=web.pk).update(
        sandbox_policy={**web.sandbox_policy, "browser": {"allow_evaluate": True}}
    )
    configure_llm(user, llm_server)
    sid = _turn(user_client, llm_server, policy, arguments)
    approval = wait_until(lambda: ToolApproval.objects.filter(session_id=sid).first())
    assert (approval.tool_name, approval.reason) == ("browser", reason)
    assert not Task.objects.exists()  # nothing was sent before the person answers
    user_client.post(f"/api/v1/sessions/{sid}/approvals/{approval.pk}/deny/")
    _answered(sid)
    assert not Task.objects.exists()


def test_reading_a_page_does_not_ask_under_ask(
    user, user_client, llm_server, fast_turns, web
) -> None:  # type: ignore[no-untyped-def]
    configure_llm(user, llm_server)
    sid = _turn(
        user_client, llm_server, "ask", '{"node_id": "web", "action": "text", "timeout": 0.1}'
    )
    _answered(sid)
    assert not ToolApproval.objects.exists()
    assert Task.objects.get().payload == {"action": "text", "session": str(sid)}
