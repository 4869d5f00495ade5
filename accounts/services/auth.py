"""Password sign-in and sign-out, and the run-time switch that turns password sign-in off."""

from __future__ import annotations

from typing import Any

from django.contrib import auth
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import selectors
from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.errors import InvalidCredentials, PasswordLoginDisabled
from accounts.models import AppConfig, User
from accounts.services.audit import audit_record
from cortex.services import model_update


def password_login(*, request: HttpRequest, email: str, password: str) -> User:
    """Check the password and start a session; failures are audited and look alike.

    An unknown email still runs the password hasher (Django's ModelBackend hashes against a
    throwaway user), so a wrong password and an unknown account take about the same time.
    It takes the HttpRequest itself (not only an AuditContext): it starts the session.
    """
    audit_context = AuditContext.from_request(request)
    if not selectors.password_login_allowed():
        audit_record(
            actor=None,
            action="auth.login.failed",
            target_type="user",
            audit_context=audit_context,
            details={"method": "password", "email": email[:254], "reason": "disabled"},
        )
        raise PasswordLoginDisabled()
    user = auth.authenticate(request, email=email, password=password)
    if user is None:
        audit_record(
            actor=None,
            action="auth.login.failed",
            target_type="user",
            audit_context=audit_context,
            details={"method": "password", "email": email[:254], "reason": "invalid_credentials"},
        )
        raise InvalidCredentials()
    auth.login(request, user)
    audit_record(
        actor=user,
        action="auth.login.succeeded",
        target_type="user",
        target_id=user.pk,
        audit_context=audit_context,
        details={"method": "password"},
    )
    return user


def logout(*, request: HttpRequest, user: User) -> None:
    """End the caller's session (a bearer-token caller has none: only the event is recorded)."""
    audit_context = AuditContext.from_request(request)
    audit_record(
        actor=user,
        action="auth.logout",
        target_type="user",
        target_id=user.pk,
        audit_context=audit_context,
    )
    auth.logout(request)


def app_config_update(
    *, actor: User, data: dict[str, Any], audit_context: AuditContext = DEFAULT_CONTEXT
) -> AppConfig:
    """Change run-time switches (only `allow_password_login` today); audited with the changes."""
    with transaction.atomic():
        config, _ = AppConfig.objects.select_for_update().get_or_create(pk=AppConfig.SINGLETON_PK)
        before = config.allow_password_login
        config, changed = model_update(instance=config, fields=["allow_password_login"], data=data)
        if changed:
            config.updated_at = timezone.now()
            config.updated_by = actor
            config.save(update_fields=["updated_at", "updated_by"])
            audit_record(
                actor=actor,
                action="app_config.updated",
                target_type="app_config",
                target_id=config.pk,
                audit_context=audit_context,
                # Keys avoid the word "password" so the redactor keeps the (harmless) values.
                details={
                    "setting": "allow_password_login",
                    "before": before,
                    "after": config.allow_password_login,
                },
            )
    return config
