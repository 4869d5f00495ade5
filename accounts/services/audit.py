"""The one way to write an audit event, used by every app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import AuditEvent, AuditRefusalWindow, User
from cortex.redaction import redact


def audit_record(
    *,
    actor: User | None,
    action: str,
    target_type: str = "",
    target_id: str | int = "",
    audit_context: AuditContext = DEFAULT_CONTEXT,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit event; secret-looking keys in `details` are redacted.

    Raises whatever the database raises: callers that must not act without an audit row (task
    dispatch) call this inside their transaction so a failure aborts the action.
    """
    actor_obj = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    event = AuditEvent(
        actor=actor_obj,
        actor_label=actor_obj.email if actor_obj else "",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        source=audit_context.transport,
        client_ip=audit_context.client_ip,
        user_agent=audit_context.user_agent[:512],
        details=redact(details or {}),
    )
    event.full_clean(exclude=["actor"])  # the actor is a loaded row: no lookup query
    event.save()
    return event


REFUSAL_WINDOWS_KEPT = timedelta(days=7)


def _window_start(now: datetime, seconds: int) -> datetime:
    """The start of the aggregation window `now` falls in (windows aligned to the epoch)."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def audit_refusal(
    *,
    actor: User | None,
    action: str,
    reason: str,
    target_type: str = "",
    target_id: str | int = "",
    audit_context: AuditContext = DEFAULT_CONTEXT,
    details: dict[str, Any] | None = None,
) -> AuditEvent | None:
    """Audit a refusal, aggregated: one event per actor, action and reason per window
    (`AUDIT_REFUSAL_WINDOW_SECONDS`, a minute).

    The first refusal in a window writes an audit event (`details` gets `reason`); later ones
    in the same window only count up `AuditRefusalWindow.count`, so a flood cannot drown the
    log and audit rows are never updated. The actor is the user, else the client address.
    Returns the event written, or None when the refusal was only counted.
    """
    client_ip = audit_context.client_ip
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    actor_key = f"user:{user.pk}" if user is not None else f"ip:{client_ip or 'unknown'}"
    now = timezone.now()
    seconds = max(1, int(settings.AUDIT_REFUSAL_WINDOW_SECONDS))
    window_start = _window_start(now, seconds)
    key = {"actor_key": actor_key[:255], "action": action, "reason": reason[:64]}
    with transaction.atomic():
        counted = AuditRefusalWindow.objects.filter(**key, window_start=window_start).update(
            count=F("count") + 1
        )
        if counted:
            return None
        event = audit_record(
            actor=user,
            action=action,
            target_type=target_type,
            target_id=target_id,
            audit_context=audit_context,
            details={**(details or {}), "reason": reason, "aggregated_per_seconds": seconds},
        )
        try:
            with transaction.atomic():
                AuditRefusalWindow.objects.create(
                    **key, window_start=window_start, first_event=event
                )
        except IntegrityError:
            # A concurrent refusal opened the window first: count this one there instead.
            # Our event stays (audit rows are never deleted); at most one extra per race.
            AuditRefusalWindow.objects.filter(**key, window_start=window_start).update(
                count=F("count") + 1
            )
        AuditRefusalWindow.objects.filter(window_start__lt=now - REFUSAL_WINDOWS_KEPT).delete()
    return event
