"""Node registry writes: create, update (incl. deactivate), delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record
from cortex.errors import Conflict
from cortex.services import model_update
from mesh import events
from mesh.models import Node, Task
from mesh.services._common import clean_sandbox_policy, clean_skill_config
from mesh.services.grants import node_grant
from mesh.services.invites import _invite_create

UPDATABLE_FIELDS = ("display_name", "description", "skill_config", "sandbox_policy", "is_active")


def node_create(
    *,
    actor: User | None,
    node_id: str,
    display_name: str,
    description: str = "",
    skill_config: dict[str, Any] | None = None,
    groups: Sequence[Group] = (),
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> tuple[Node, str]:
    """Register a node, grant it to `groups` and issue its first invite, all or nothing;
    returns the node and the plaintext invite."""
    with transaction.atomic():
        if Node.objects.filter(node_id=node_id).exists():
            raise Conflict("A node with this id already exists.", code="node_exists")
        node = Node(
            node_id=node_id,
            display_name=display_name,
            description=description,
            skill_config=clean_skill_config(skill_config),
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        node.full_clean()
        node.save()
        token, _ = _invite_create(node=node, actor=actor)
        audit_record(
            actor=actor,
            action="node.create",
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
            details={"display_name": display_name, "skill_config": node.skill_config},
        )
        for group in groups:
            node_grant(actor=actor, node=node, group=group, audit_context=audit_context)
    return node, token


def node_update(
    *, actor: User, node: Node, data: dict[str, Any], audit_context: AuditContext = DEFAULT_CONTEXT
) -> Node:
    """Change descriptive fields, skills, sandbox policy or `is_active`; the node is told."""
    data = dict(data)
    if "skill_config" in data:
        data["skill_config"] = clean_skill_config(data["skill_config"], base=node.skill_config)
    if "sandbox_policy" in data:
        data["sandbox_policy"] = clean_sandbox_policy(data["sandbox_policy"])
    before = {field: getattr(node, field) for field in UPDATABLE_FIELDS}
    with transaction.atomic():
        node, changed = model_update(instance=node, fields=UPDATABLE_FIELDS, data=data)
        if not changed:
            return node
        diff = {f: getattr(node, f) for f in UPDATABLE_FIELDS if getattr(node, f) != before[f]}
        audit_record(
            actor=actor,
            action="node.update",
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
            details={"changed": diff},
        )
        if "is_active" in diff and not node.is_active:
            events.ring_node(node.node_id, events.RING_KICK)
        elif "skill_config" in diff or "sandbox_policy" in diff:
            events.ring_node(node.node_id, events.RING_POLICY)
    return node


def node_deactivate(
    *, actor: User, node: Node, audit_context: AuditContext = DEFAULT_CONTEXT
) -> Node:
    """Refuse new work and connections for the node without deleting its history."""
    return node_update(
        actor=actor, node=node, data={"is_active": False}, audit_context=audit_context
    )


def node_delete(*, actor: User, node: Node, audit_context: AuditContext = DEFAULT_CONTEXT) -> None:
    """Delete the node with its grants, credentials and task journal; its stream is closed."""
    node_id = node.node_id
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="node.delete",
            target_type="node",
            target_id=node_id,
            audit_context=audit_context,
            details={"display_name": node.display_name},
        )
        from mesh.services.browser import browser_screenshots_delete

        browser_screenshots_delete(
            task_ids=Task.objects.filter(node=node, kind="browser").values_list("pk", flat=True)
        )
        node.delete()
        events.ring_node(node_id, events.RING_KICK)
