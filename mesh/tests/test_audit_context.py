"""Each transport builds its audit context once: the admin, the console socket and commands
record their transport, and the admin and the socket the client's address and agent."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from accounts.models import AuditEvent
from mesh.tests.consumers.conftest import communicator, login_cookie


@pytest.mark.django_db
def test_admin_actions_record_the_admins_address(staff_user, make_node) -> None:
    node, _ = make_node("adm-ip")
    group = Group.objects.create(name="g")
    client = Client(REMOTE_ADDR="192.0.2.20", HTTP_USER_AGENT="admin-browser")
    client.force_login(staff_user)
    response = client.post("/admin/mesh/nodegroupaccess/add/", {"node": node.pk, "group": group.pk})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="node.grant")
    assert (event.source, event.client_ip, event.user_agent, event.actor_id) == (
        "admin",
        "192.0.2.20",
        "admin-browser",
        staff_user.pk,
    )


@pytest.mark.django_db
def test_commands_record_the_command_transport_without_an_actor(make_node) -> None:
    node, _ = make_node("cmd-node")
    Group.objects.create(name="ops")
    call_command("grant_node", node.node_id, "ops")
    call_command("revoke_node", node.node_id, "ops")
    rows = list(
        AuditEvent.objects.filter(action__in=["node.grant", "node.revoke"])
        .order_by("id")
        .values_list("action", "source", "actor_id", "client_ip")
    )
    assert rows == [  # type: ignore[comparison-overlap]  # actor_id is None here
        ("node.grant", "command", None, None),
        ("node.revoke", "command", None, None),
    ]


@pytest.mark.django_db(transaction=True)
async def test_console_socket_records_console_and_the_clients_address(user, make_node, grant):
    node, _ = await database_sync_to_async(make_node)("ws-ip")
    await database_sync_to_async(grant)(user, node)
    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/ws-ip/", cookie)
    ws.scope["client"] = ("192.0.2.30", 5555)
    ws.scope["headers"].append((b"user-agent", b"console-browser"))
    assert (await ws.connect(timeout=5))[0] is True
    await ws.receive_json_from(timeout=5)  # node.snapshot
    await ws.send_json_to({"type": "run", "seq": 1, "command": "echo hi"})
    accepted = await ws.receive_json_from(timeout=10)
    assert accepted["type"] == "task.accepted", accepted
    await ws.send_json_to({"type": "cancel", "seq": 2, "task_id": accepted["task_id"]})
    cancelled = await ws.receive_json_from(timeout=10)
    assert cancelled["type"] == "task.cancel_requested", cancelled
    await ws.disconnect()
    rows = await database_sync_to_async(
        lambda: list(
            AuditEvent.objects.filter(action__in=["task.dispatch", "task.cancel"])
            .order_by("id")
            .values_list("action", "source", "client_ip", "user_agent")
        )
    )()
    assert rows == [
        ("task.dispatch", "console", "192.0.2.30", "console-browser"),
        ("task.cancel", "console", "192.0.2.30", "console-browser"),
    ]
