"""The one way to write an audit event, used by every app."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import AuditEvent, User
from cortex.redaction import redact


def client_ip_of(request: HttpRequest | Any | None) -> str | None:
    """The peer address as the server saw it (proxies are trusted only via the ASGI server)."""
    if request is None:
        return None
    meta = getattr(request, "META", None)
    if meta is None:
        return None
    return meta.get("REMOTE_ADDR") or None


def audit_record(
    *,
    actor: User | None,
    action: str,
    target_type: str = "",
    target_id: str | int = "",
    request: HttpRequest | Any | None = None,
    source: str = "api",
    client_ip: str | None = None,
    user_agent: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit event; secret-looking keys in `details` are redacted.

    Raises whatever the database raises: callers that must not act without an audit row (task
    dispatch) call this inside their transaction so a failure aborts the action.
    """
    if request is not None:
        client_ip = client_ip or client_ip_of(request)
        user_agent = user_agent or request.META.get("HTTP_USER_AGENT", "")
    actor_obj = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        actor=actor_obj,
        actor_label=actor_obj.email if actor_obj else "",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        source=source,
        client_ip=client_ip,
        user_agent=user_agent[:512],
        details=redact(details or {}),
    )
    event.full_clean(exclude=["actor"])  # the actor is a loaded row: no lookup query
    event.save()
    return event
