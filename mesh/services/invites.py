"""Invite tokens: issued by admins, traded once by a node for its credential (`Join`)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, GRPC_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record
from cortex.errors import Conflict, NotAuthenticated
from mesh.models import CredentialState, Node, NodeCredential, NodeInvite
from mesh.services._common import fingerprint_of, new_secret, same_hash, sha256_hex
from mesh.services.refusals import refusal_record

logger = logging.getLogger("cortex.mesh")


class InviteInvalid(NotAuthenticated):
    code = "invite_invalid"
    default_message = "The invite token is not valid for this node."


class InvitePending(Conflict):
    code = "invite_pending"
    default_message = (
        "The node has a pending invite; a bundle with a new one would replace it. Download "
        "with ?invite=new to replace it, or ?invite=none for a bundle without a token."
    )


def invite_pending(*, node: Node) -> bool:
    """Whether the node has an invite that could still be traded for a credential."""
    return NodeInvite.objects.filter(
        node=node, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).exists()


def _invite_create(*, node: Node, actor: User | None) -> tuple[str, int]:
    """Revoke the node's unused invites and store a new one; returns the plaintext once and
    how many pending invites it replaced."""
    now = timezone.now()
    replaced = NodeInvite.objects.filter(
        node=node, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).update(revoked_at=now)
    NodeInvite.objects.filter(node=node, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=now
    )
    token = new_secret("cni_")
    invite = NodeInvite(
        node=node,
        token_hash=sha256_hex(token),
        expires_at=now + timedelta(seconds=settings.MESH_INVITE_TTL),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    invite.full_clean()
    invite.save()
    return token, replaced


def invite_issue(
    *, actor: User | None, node: Node, audit_context: AuditContext = DEFAULT_CONTEXT
) -> str:
    """Issue a new invite for `node` (older unused ones stop working); plaintext returned once.

    The audit row says how many pending invites this replaced (`replaced`).
    """
    with transaction.atomic():
        token, replaced = _invite_create(node=node, actor=actor)
        audit_record(
            actor=actor,
            action="node.invite",
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
            details={"expires_in": settings.MESH_INVITE_TTL, "replaced": replaced},
        )
    return token


def invite_exchange(
    *,
    node_id: str,
    invite_token: str,
    version: str = "",
    platform: str = "",
    audit_context: AuditContext = GRPC_CONTEXT,
) -> tuple[Node, str]:
    """Trade a single-use invite for a fresh node credential (earlier credentials end).

    Exactly one of two concurrent exchanges of one invite wins: the invite is consumed with a
    conditional UPDATE. Raises InviteInvalid (`invite_invalid`, `invite_expired`,
    `invite_used`, `invite_revoked`) with nothing written but the refusal's aggregated audit
    (`node.join_refused`, see `refusals`).
    """
    try:
        return _invite_exchange(
            node_id=node_id,
            invite_token=invite_token,
            version=version,
            platform=platform,
            audit_context=audit_context,
        )
    except InviteInvalid as exc:
        refusal_record(
            action="node.join_refused",
            node_id=node_id,
            reason=exc.code,
            secret=invite_token,
            audit_context=audit_context,
        )
        raise


def _invite_exchange(
    *,
    node_id: str,
    invite_token: str,
    version: str,
    platform: str,
    audit_context: AuditContext,
) -> tuple[Node, str]:
    now = timezone.now()
    token_hash = sha256_hex(invite_token or "")
    invite = (
        NodeInvite.objects.select_related("node").filter(token_hash=token_hash).first()
        if invite_token
        else None
    )
    if (
        invite is None
        or not same_hash(invite_token, invite.token_hash)
        or invite.node.node_id != node_id
        or not invite.node.is_active
    ):
        raise InviteInvalid()
    if invite.revoked_at is not None:
        raise InviteInvalid("The invite was revoked.", code="invite_revoked")
    if invite.used_at is not None:
        raise InviteInvalid("The invite was already used.", code="invite_used")
    if invite.expires_at <= now:
        raise InviteInvalid("The invite has expired.", code="invite_expired")
    node = invite.node
    credential = new_secret("cnc_")
    with transaction.atomic():
        won = NodeInvite.objects.filter(
            pk=invite.pk, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if won != 1:
            raise InviteInvalid("The invite was already used.", code="invite_used")
        NodeCredential.objects.filter(node=node).exclude(state=CredentialState.REVOKED).update(
            state=CredentialState.REVOKED, revoked_at=now
        )
        row = NodeCredential(
            node=node,
            secret_hash=sha256_hex(credential),
            fingerprint=fingerprint_of(credential),
            state=CredentialState.ACTIVE,
        )
        row.full_clean()
        row.save()
        Node.objects.filter(pk=node.pk).update(
            version=version[:64], platform=platform[:128], updated_at=now
        )
        audit_record(
            actor=None,
            action="node.join",
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
            details={
                "version": version[:64],
                "platform": platform[:128],
                "fingerprint": row.fingerprint,
            },
        )
    logger.info("node %s joined (credential %s)", node.node_id, row.fingerprint)
    return node, credential
