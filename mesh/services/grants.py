"""Group access to nodes: who may see and use which node."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record
from cortex.errors import NotFound
from mesh import events
from mesh.models import Node, NodeGroupAccess


def node_grant(
    *, actor: User | None, node: Node, group: Group, audit_context: AuditContext = DEFAULT_CONTEXT
) -> NodeGroupAccess:
    """Let `group` use `node`; granting twice is a no-op (audited once)."""
    with transaction.atomic():
        access, created = NodeGroupAccess.objects.get_or_create(
            node=node, group=group, defaults={"granted_by": actor}
        )
        if created:
            audit_record(
                actor=actor,
                action="node.grant",
                target_type="node",
                target_id=node.node_id,
                audit_context=audit_context,
                details={"group_id": group.pk, "group": group.name},
            )
    return access


def node_revoke(
    *, actor: User | None, node: Node, group: Group, audit_context: AuditContext = DEFAULT_CONTEXT
) -> None:
    """Stop `group` from using `node`; watchers are told so consumers can re-check access."""
    with transaction.atomic():
        deleted, _ = NodeGroupAccess.objects.filter(node=node, group=group).delete()
        if not deleted:
            raise NotFound("The group has no access to this node.", code="grant_not_found")
        audit_record(
            actor=actor,
            action="node.revoke",
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
            details={"group_id": group.pk, "group": group.name},
        )
        events.console_frame(node.node_id, "node.access_revoked", group_id=group.pk)
