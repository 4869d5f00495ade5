"""User lifecycle services."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import HttpRequest

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.errors import (
    CannotDeactivateSelf,
    EmailTaken,
    FieldNotWritable,
    PasswordLoginDisabled,
    WrongPassword,
)
from accounts.models import User
from accounts.services.audit import audit_record
from accounts.services.sessions import user_sessions_end
from accounts.services.tokens import tokens_revoke_all
from cortex.errors import ValidationFailed
from cortex.services import model_update

ENSURE_ADMIN = AuditContext.command("ensure_admin")  # `make run` creates the first admin


@transaction.atomic
def admin_ensure(
    *, email: str, password: str | None, audit_context: AuditContext = ENSURE_ADMIN
) -> tuple[User | None, str | None]:
    """Create the first admin when no admin exists.

    Returns (user, generated_password): the password is returned only when it was generated,
    so the caller can print it once. Returns (None, None) when an admin already exists.
    """
    if User.objects.filter(is_staff=True).exists():
        return None, None
    generated = None
    if not password:
        generated = secrets.token_urlsafe(16)
        password = generated
    user = User.objects.create_superuser(email=email, password=password)
    audit_record(
        actor=None,
        action="user.created",
        target_type="user",
        target_id=user.pk,
        audit_context=audit_context,
        details={"email": user.email, "is_staff": True},
    )
    return user, generated


_SELF_WRITABLE = frozenset({"display_name", "default_approval_policy"})
_ADMIN_WRITABLE = ("email", "display_name", "is_staff")


def _check_email_free(email: str, *, exclude_pk: int | None = None) -> None:
    taken = User.objects.filter(email__iexact=email)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise EmailTaken(fields={"email": ["A user with this email exists already."]})


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(fields={"password": list(exc.messages)}) from exc


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    email: str,
    password: str | None = None,
    display_name: str = "",
    is_staff: bool = False,
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> User:
    """Create a user; without a password the user can sign in only through OIDC."""
    email = User.objects.normalize_email(email).lower()
    _check_email_free(email)
    if password:
        _check_password(password, User(email=email, display_name=display_name))
    user = User.objects.create_user(
        email=email,
        password=password or None,
        display_name=display_name,
        is_staff=is_staff,
        is_superuser=is_staff,
    )
    audit_record(
        actor=actor,
        action="user.created",
        target_type="user",
        target_id=user.pk,
        audit_context=audit_context,
        details={
            "email": user.email,
            "is_staff": is_staff,
            "sign_in": "password" if password else "oidc_only",
        },
    )
    return user


@transaction.atomic
def user_update(
    *,
    actor: User,
    user: User,
    data: dict[str, Any],
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> User:
    """Admin change of email, display name, admin flag, password or active state."""
    if data.get("is_active") is False and user.is_active:
        user = user_deactivate(actor=actor, user=user, audit_context=audit_context)
    elif data.get("is_active") is True and not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active", "updated_at"])
        audit_record(
            actor=actor,
            action="user.reactivated",
            target_type="user",
            target_id=user.pk,
            audit_context=audit_context,
        )
    if "email" in data:
        data = {**data, "email": User.objects.normalize_email(data["email"]).lower()}
        _check_email_free(data["email"], exclude_pk=user.pk)
    before = {f: getattr(user, f) for f in _ADMIN_WRITABLE}
    user, changed = model_update(instance=user, fields=_ADMIN_WRITABLE, data=data)
    if "is_staff" in data and user.is_superuser != user.is_staff:
        # Admins are superusers and vice versa: one flag, no half-admins.
        user.is_superuser = user.is_staff
        user.save(update_fields=["is_superuser"])
    password_changed = False
    if data.get("password"):
        _check_password(data["password"], user)
        user.set_password(data["password"])
        user.save(update_fields=["password"])
        password_changed = True
    if changed or password_changed:
        after = {f: getattr(user, f) for f in _ADMIN_WRITABLE}
        audit_record(
            actor=actor,
            action="user.updated",
            target_type="user",
            target_id=user.pk,
            audit_context=audit_context,
            details={
                "before": {k: v for k, v in before.items() if after[k] != v},
                "after": {k: v for k, v in after.items() if before[k] != v},
                # Field names only: "password" appears as a value, never with the secret.
                "fields": sorted(
                    [k for k in after if before[k] != after[k]]
                    + (["password"] if password_changed else [])
                ),
            },
        )
    return user


@transaction.atomic
def user_deactivate(
    *, actor: User, user: User, audit_context: AuditContext = DEFAULT_CONTEXT
) -> User:
    """Deactivate a user: their sessions end and their API tokens are revoked at once."""
    if actor.pk == user.pk:
        raise CannotDeactivateSelf()
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active", "updated_at"])
    revoked = tokens_revoke_all(user=user)
    ended = user_sessions_end(user=user)
    audit_record(
        actor=actor,
        action="user.deactivated",
        target_type="user",
        target_id=user.pk,
        audit_context=audit_context,
        details={"email": user.email, "revoked_count": revoked, "sessions_ended": ended},
    )
    return user


def user_update_self(
    *,
    actor: User,
    data: dict[str, Any],
    requested: Iterable[str],
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> User:
    """A user edits their own profile; only harmless fields are writable.

    `requested` is every key the caller sent. Any other key (is_staff, groups, email, ...) is
    refused as a whole, and the attempt is recorded as `user.privilege_escalation_attempt`.
    """
    refused = sorted(set(requested) - _SELF_WRITABLE)
    if refused:
        audit_record(
            actor=actor,
            action="user.privilege_escalation_attempt",
            target_type="user",
            target_id=actor.pk,
            audit_context=audit_context,
            details={"fields": refused},
        )
        raise FieldNotWritable(fields={f: ["This field cannot be changed here."] for f in refused})
    before = {f: getattr(actor, f) for f in sorted(_SELF_WRITABLE)}
    user, changed = model_update(instance=actor, fields=sorted(_SELF_WRITABLE), data=data)
    if changed:
        after = {f: getattr(user, f) for f in before}
        audit_record(
            actor=actor,
            action="user.updated",
            target_type="user",
            target_id=user.pk,
            audit_context=audit_context,
            details={
                "before": {k: v for k, v in before.items() if after[k] != v},
                "after": {k: v for k, v in after.items() if before[k] != v},
            },
        )
    return user


def user_password_change(
    *,
    actor: User,
    current_password: str,
    new_password: str,
    audit_context: AuditContext = DEFAULT_CONTEXT,
    session_request: HttpRequest | None = None,
) -> User:
    """A signed-in user changes their own password (password sign-in must be allowed).

    The current password is checked first (a stolen session alone cannot lock its owner out),
    then Django's validators. The caller's own session (`session_request`, when it has one)
    stays signed in; the change and each refusal are audited, never with either password.
    """
    from accounts.selectors import password_login_allowed

    def refuse(reason: str) -> None:
        audit_record(
            actor=actor,
            action="user.password_change_refused",
            target_type="user",
            target_id=actor.pk,
            audit_context=audit_context,
            details={"reason": reason},
        )

    if not password_login_allowed():
        refuse("password_login_disabled")
        raise PasswordLoginDisabled()
    if not actor.has_usable_password() or not actor.check_password(current_password):
        refuse("wrong_current_password")
        raise WrongPassword(fields={"current_password": ["This is not your current password."]})
    try:
        validate_password(new_password, actor)
    except DjangoValidationError as exc:
        refuse("weak_password")
        raise ValidationFailed(fields={"new_password": list(exc.messages)}) from exc
    with transaction.atomic():
        actor.set_password(new_password)
        actor.save(update_fields=["password", "updated_at"])
        audit_record(
            actor=actor,
            action="user.password_changed",
            target_type="user",
            target_id=actor.pk,
            audit_context=audit_context,
        )
    if session_request is not None and hasattr(session_request, "session"):
        update_session_auth_hash(session_request, actor)  # this session stays, others end
    return actor
