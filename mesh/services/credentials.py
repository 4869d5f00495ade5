"""Node credentials: checked on every call, rotated over the live stream."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, GRPC_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record
from cortex.errors import Conflict
from mesh import events
from mesh.models import CredentialState, Node, NodeCredential
from mesh.services._common import fingerprint_of, new_secret, same_hash, sha256_hex


def credential_authenticate(*, node_id: str, credential: str) -> Node | None:
    """The active node whose active or pending credential matches, else None."""
    if not node_id or not credential:
        return None
    rows = list(
        NodeCredential.objects.select_related("node")
        .filter(node__node_id=node_id, node__is_active=True)
        .exclude(state=CredentialState.REVOKED)
    )
    match = None
    for row in rows:  # compare with every row so timing does not reveal which one matched
        if same_hash(credential, row.secret_hash):
            match = row
    return match.node if match is not None else None


def credential_rotate(
    *, actor: User | None, node: Node, audit_context: AuditContext = DEFAULT_CONTEXT
) -> None:
    """Ask the runmesh holding the node's stream to push a new credential.

    The new secret is minted by that process (`credential_mint_rotation`) so it never crosses
    the channel layer; the old credential stays valid until the node acknowledges.
    """
    if not node.is_active:
        raise Conflict("The node is deactivated.", code="node_inactive")
    with transaction.atomic():
        Node.objects.filter(pk=node.pk).update(rotation_requested_at=timezone.now())
        audit_record(
            actor=actor,
            action="node.credential_rotate",
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
        )
        events.ring_node(node.node_id, events.RING_ROTATE)


def credential_mint_rotation(*, node_id: str) -> str | None:
    """Claim a pending rotation request and store the new credential as pending."""
    now = timezone.now()
    with transaction.atomic():
        node = Node.objects.select_for_update().filter(node_id=node_id).first()
        if node is None or node.rotation_requested_at is None:
            return None
        Node.objects.filter(pk=node.pk).update(rotation_requested_at=None, updated_at=now)
        NodeCredential.objects.filter(node=node, state=CredentialState.PENDING).update(
            state=CredentialState.REVOKED, revoked_at=now
        )
        secret = new_secret("cnc_")
        row = NodeCredential(
            node=node,
            secret_hash=sha256_hex(secret),
            fingerprint=fingerprint_of(secret),
            state=CredentialState.PENDING,
        )
        row.full_clean()
        row.save()
    return secret


def credential_confirm(
    *, node_id: str, fingerprint: str, audit_context: AuditContext = GRPC_CONTEXT
) -> bool:
    """The node stored the new credential: make it active and end the old one."""
    now = timezone.now()
    with transaction.atomic():
        pending = (
            NodeCredential.objects.select_for_update()
            .filter(node__node_id=node_id, state=CredentialState.PENDING, fingerprint=fingerprint)
            .first()
        )
        if pending is None:
            return False
        NodeCredential.objects.filter(node_id=pending.node_id, state=CredentialState.ACTIVE).update(
            state=CredentialState.REVOKED, revoked_at=now
        )
        NodeCredential.objects.filter(pk=pending.pk).update(state=CredentialState.ACTIVE)
        audit_record(
            actor=None,
            action="node.credential_confirmed",
            target_type="node",
            target_id=node_id,
            audit_context=audit_context,
            details={"fingerprint": fingerprint},
        )
    return True
