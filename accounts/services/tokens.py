"""Personal API tokens: created once in plaintext, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import ApiToken, User
from accounts.services.audit import audit_record

TOKEN_PREFIX = "ctx_"  # noqa: S105  # a public marker, not a secret
#: last_used_at is written at most this often per token, so reads stay cheap.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def token_hash(token: str) -> str:
    """SHA-256 hex of a token; tokens carry 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_create(
    *,
    actor: User | None,
    user: User,
    name: str,
    expires_days: int | None = None,
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the plaintext (shown once, never stored)."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    token = ApiToken(
        user=user,
        name=name,
        prefix=plaintext[: len(TOKEN_PREFIX) + 8],
        token_hash=token_hash(plaintext),
        expires_at=expires_at,
    )
    with transaction.atomic():
        token.full_clean()
        token.save()
        audit_record(
            actor=actor,
            action="token.created",
            target_type="api_token",
            target_id=token.pk,
            audit_context=audit_context,
            details={
                "user": user.pk,
                "name": name,
                "prefix": token.prefix,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return token, plaintext


def token_revoke(
    *, actor: User | None, token: ApiToken, audit_context: AuditContext = DEFAULT_CONTEXT
) -> ApiToken:
    """Revoke a token at once; revoking twice is a no-op without a second audit event."""
    if token.revoked_at is not None:
        return token
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="token.revoked",
            target_type="api_token",
            target_id=token.pk,
            audit_context=audit_context,
            details={"user": token.user_id, "name": token.name, "prefix": token.prefix},
        )
    return token


def tokens_revoke_all(*, user: User) -> int:
    """Revoke every live token of `user` (on deactivation); returns how many were revoked."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def token_authenticate(*, token: str) -> User | None:
    """The active user a presented token belongs to, or None; records when it was last used."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    now = timezone.now()
    found = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=token_hash(token), revoked_at__isnull=True)
        .first()
    )
    if found is None or (found.expires_at is not None and found.expires_at <= now):
        return None
    if not found.user.is_active:
        return None
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
    return found.user
