"""Choosing a session's workspace source (none, hub, node) and its lead node and path."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services.audit import audit_record
from cortex.errors import ValidationFailed
from sessions_app.models import ChatSession, SessionNode
from workspaces.models import (
    SyncState,
    Workspace,
    WorkspaceFile,
    WorkspaceNode,
    WorkspaceSource,
)
from workspaces.selectors import workspace_of, workspace_path


def workspace_configure(
    *,
    actor: User,
    session: ChatSession,
    source: str,
    node_id: str | None = None,
    path: Any = None,
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> Workspace:
    """Set the source of truth. `node` needs a node attached to the session and a path relative
    to that node's workspace root (the one path rule); `hub` and `none` take neither. Audited
    (`workspace.configure`). Nodes are (re)synced once the change is committed."""
    if source not in WorkspaceSource.values:
        raise ValidationFailed(fields={"source": ["One of none, hub, node."]})
    lead = None
    clean_path = ""
    if source == WorkspaceSource.NODE:
        if not node_id:
            raise ValidationFailed(fields={"node_id": ["A node attached to the session."]})
        attachment = (
            SessionNode.objects.filter(session=session, node__node_id=node_id)
            .select_related("node")
            .first()
        )
        if attachment is None:
            raise ValidationFailed(fields={"node_id": ["A node attached to the session."]})
        lead = attachment.node
        clean_path = workspace_path(path=path if path is not None else "", allow_root=True)
    elif node_id or path:
        raise ValidationFailed(
            fields={"node_id": ["Only a node workspace names a node and a path."]}
        )
    with transaction.atomic():
        workspace = workspace_of(session=session)
        workspace.source, workspace.lead_node, workspace.path = source, lead, clean_path
        workspace.full_clean(exclude=["session", "lead_node"])
        workspace.save()
        audit_record(
            actor=actor,
            action="workspace.configure",
            target_type="session",
            target_id=session.pk,
            audit_context=audit_context,
            details={"source": source, "node_id": node_id or "", "path": clean_path},
        )
        from workspaces.services.skills import workspace_skills_publish
        from workspaces.services.sync import workspace_sync_soon

        if source == WorkspaceSource.HUB:
            workspace_skills_publish(actor=actor, workspace=workspace)
        elif source == WorkspaceSource.NODE:
            # The lead's folder is the truth: the mirror fills from its first report.
            WorkspaceFile.objects.filter(workspace=workspace).delete()
            WorkspaceNode.objects.filter(workspace=workspace, node=lead).update(
                known=None, state=SyncState.SYNCING, drift=[]
            )
        workspace_sync_soon(workspace_id=workspace.pk)
    return workspace
