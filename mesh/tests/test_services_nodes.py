"""mesh/services/nodes.py: deactivating keeps a node's history; deleting removes it, audited."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from mesh.models import Node, NodeGroupAccess, Task
from mesh.services.credentials import credential_authenticate
from mesh.services.invites import invite_exchange
from mesh.services.nodes import node_deactivate, node_delete

pytestmark = pytest.mark.django_db


def test_node_deactivate_refuses_the_node_and_keeps_its_history(staff_user, make_node) -> None:  # type: ignore[no-untyped-def]
    node, invite = make_node("d1")
    _, credential = invite_exchange(node_id="d1", invite_token=invite)
    Task.objects.create(node=node, kind="shell", payload={"command": "true"})

    node = node_deactivate(actor=staff_user, node=node)
    assert node.is_active is False
    assert Node.objects.get(node_id="d1").is_active is False
    assert Task.objects.filter(node=node).count() == 1
    assert credential_authenticate(node_id="d1", credential=credential) is None
    row = AuditEvent.objects.get(action="node.update", target_id="d1")
    assert row.details == {"changed": {"is_active": False}}

    node_deactivate(actor=staff_user, node=node)  # again: nothing changes, nothing audited
    assert AuditEvent.objects.filter(action="node.update").count() == 1


def test_node_delete_removes_grants_and_tasks_and_audits(
    staff_user, user, make_node, grant
) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("gone")
    grant(user, node)
    Task.objects.create(node=node, kind="shell", payload={"command": "true"})
    kept, _ = make_node("kept")

    node_delete(actor=staff_user, node=node)
    assert list(Node.objects.values_list("node_id", flat=True)) == ["kept"]
    assert not NodeGroupAccess.objects.exists()
    assert not Task.objects.exists()
    row = AuditEvent.objects.get(action="node.delete")
    assert (row.actor, row.target_id, row.details) == (staff_user, "gone", {"display_name": "Gone"})
    assert kept.pk is not None
