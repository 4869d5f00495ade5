"""Django admin goes through the services; task payload validation per kind."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import AuditEvent
from cortex.errors import ValidationFailed
from mesh import services
from mesh.models import Node, NodeGroupAccess, Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(staff_user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff_user)
    return client


def test_admin_creates_changes_and_deletes_nodes_through_services(admin_client):
    response = admin_client.post(
        "/admin/mesh/node/add/",
        {
            "node_id": "adm-1",
            "display_name": "Adm",
            "description": "",
            "skill_config": '{"shell": true, "files": false, "browser": false, '
            '"max_concurrent_tasks": 1}',
            "sandbox_policy": '{"mode": "permissive"}',
            "is_active": "on",
            "group_access-TOTAL_FORMS": "0",
            "group_access-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    node = Node.objects.get(node_id="adm-1")
    assert node.skill_config["max_concurrent_tasks"] == 1
    assert AuditEvent.objects.filter(action="node.create", source="admin").count() == 1
    response = admin_client.post(
        f"/admin/mesh/node/{node.pk}/change/",
        {
            "display_name": "Renamed",
            "description": "d",
            "skill_config": '{"shell": true, "files": false, "browser": false, '
            '"max_concurrent_tasks": 1}',
            "sandbox_policy": '{"mode": "permissive"}',
            "is_active": "on",
            "group_access-TOTAL_FORMS": "0",
            "group_access-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    assert Node.objects.get(pk=node.pk).display_name == "Renamed"
    assert AuditEvent.objects.filter(action="node.update", source="admin").count() == 1
    group = Group.objects.create(name="g")
    response = admin_client.post(
        "/admin/mesh/nodegroupaccess/add/", {"node": node.pk, "group": group.pk}
    )
    assert response.status_code == 302
    access = NodeGroupAccess.objects.get()
    assert AuditEvent.objects.filter(action="node.grant", source="admin").count() == 1
    response = admin_client.post(
        f"/admin/mesh/nodegroupaccess/{access.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="node.revoke", source="admin").count() == 1
    response = admin_client.post(f"/admin/mesh/node/{node.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Node.objects.exists()
    assert AuditEvent.objects.filter(action="node.delete", source="admin").count() == 1


def test_tasks_are_read_only_in_admin(admin_client, user, make_node, grant):
    node, _ = make_node("n1")
    grant(user, node)
    task = services.task_dispatch(actor=user, node=node, kind="shell", payload={"command": "ls"})
    assert admin_client.get("/admin/mesh/task/").status_code == 200
    assert admin_client.get(f"/admin/mesh/task/{task.pk}/change/").status_code == 200
    assert admin_client.get("/admin/mesh/task/add/").status_code == 403
    response = admin_client.post(f"/admin/mesh/task/{task.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    ("kind", "payload", "field"),
    [
        ("gpu", {}, "kind"),
        ("shell", {"command": "  "}, "command"),
        ("shell", {"command": "ls", "env": {"A": 1}}, "env"),
        ("shell", {"command": "ls", "cwd": 3}, "cwd"),
        ("files", {"action": "format"}, "action"),
        ("browser", {"action": "click"}, "action"),
    ],
)
def test_payload_validation(user, make_node, grant, kind, payload, field):
    node, _ = make_node("n1", skill_config={"browser": True})
    grant(user, node)
    with pytest.raises(ValidationFailed) as caught:
        services.task_dispatch(actor=user, node=node, kind=kind, payload=payload)
    assert field in caught.value.fields
    assert Task.objects.count() == 0


def test_files_and_browser_tasks_and_timeout_bounds(user, make_node, grant):
    node, _ = make_node("n1", skill_config={"browser": True})
    # Its hello reported every skill (a node that reports capabilities gets only those).
    caps = {"shell": True, "files": True, "browser": True}
    Node.objects.filter(pk=node.pk).update(capabilities=caps)
    node.refresh_from_db()
    grant(user, node)
    files = services.task_dispatch(
        actor=user, node=node, kind="files", payload={"action": "read", "path": "a.txt"}
    )
    browser = services.task_dispatch(
        actor=user, node=node, kind="browser", payload={"action": "navigate", "url": "http://x"}
    )
    assert (files.status, browser.status) == ("queued", "queued")
    with pytest.raises(ValidationFailed):
        services.task_dispatch(
            actor=user, node=node, kind="shell", payload={"command": "ls"}, timeout=0
        )
    event = AuditEvent.objects.filter(action="task.dispatch", target_id=str(files.pk)).get()
    assert (event.details["kind"], event.details["action"], event.details["path"]) == (
        "files",
        "read",
        "a.txt",
    )
