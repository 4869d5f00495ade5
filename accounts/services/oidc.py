"""Users from OIDC claims: matched by the provider's `sub`, created on first sign-in."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.context import OIDC_CONTEXT, AuditContext
from accounts.errors import OidcUserRefused
from accounts.models import User
from accounts.services.audit import audit_record


def _claim_groups(claims: dict[str, Any], claim: str) -> list[str] | None:
    value = claims.get(claim)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return None
    return sorted({str(v)[:150] for v in value if isinstance(v, str | int) and str(v).strip()})


@transaction.atomic
def oidc_user_resolve(
    *, claims: dict[str, Any], groups_claim: str = "", audit_context: AuditContext = OIDC_CONTEXT
) -> User:
    """The user for verified OIDC claims: by `sub`, else a verified email, else a new user.

    An existing password account is linked only when the provider says the email is verified,
    so an account cannot be taken over by registering its address at a lax provider. Groups
    follow `groups_claim` when it is set and present (groups are created as needed).
    Raises OidcUserRefused (no session) for inactive users or unlinkable emails.
    """
    sub = str(claims["sub"])
    email = User.objects.normalize_email(str(claims.get("email") or "")).lower()
    user = User.objects.select_for_update().filter(oidc_sub=sub).first()
    created = False
    if user is None and email:
        existing = User.objects.select_for_update().filter(email__iexact=email).first()
        if existing is not None:
            if existing.oidc_sub or claims.get("email_verified") is not True:
                raise OidcUserRefused("email_not_linkable")
            existing.oidc_sub = sub
            existing.save(update_fields=["oidc_sub", "updated_at"])
            user = existing
            audit_record(
                actor=user,
                action="user.oidc_linked",
                target_type="user",
                target_id=user.pk,
                audit_context=audit_context,
            )
    if user is None:
        if not email:
            raise OidcUserRefused("email_missing")
        user = User.objects.create_user(
            email=email, password=None, display_name=str(claims.get("name") or "")[:150]
        )
        user.oidc_sub = sub
        user.save(update_fields=["oidc_sub", "updated_at"])
        created = True
        audit_record(
            actor=None,
            action="user.created",
            target_type="user",
            target_id=user.pk,
            audit_context=audit_context,
            details={"email": email, "is_staff": False, "sign_in": "oidc_only"},
        )
    if not user.is_active:
        raise OidcUserRefused("user_inactive")
    if not created and claims.get("name") and not user.display_name:
        user.display_name = str(claims["name"])[:150]
        user.save(update_fields=["display_name", "updated_at"])
    if groups_claim:
        _sync_groups(
            user=user, names=_claim_groups(claims, groups_claim), audit_context=audit_context
        )
    return user


def _sync_groups(*, user: User, names: list[str] | None, audit_context: AuditContext) -> None:
    if names is None:
        return
    wanted = {name: Group.objects.get_or_create(name=name)[0] for name in names}
    current = {g.name: g for g in user.groups.all()}
    added = sorted(set(wanted) - set(current))
    removed = sorted(set(current) - set(wanted))
    if not added and not removed:
        return
    user.groups.add(*(wanted[n] for n in added))
    user.groups.remove(*(current[n] for n in removed))
    audit_record(
        actor=user,
        action="user.groups_synced",
        target_type="user",
        target_id=user.pk,
        audit_context=audit_context,
        details={"added": added, "removed": removed},
    )
