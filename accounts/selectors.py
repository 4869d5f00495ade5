"""Read-side queries of the accounts app."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import AuditEvent, User


def audit_list(*, user: User) -> QuerySet[AuditEvent]:
    """Audit events visible to `user`: admins see all, others none."""
    if not (user.is_authenticated and user.is_staff):
        return AuditEvent.objects.none()
    return AuditEvent.objects.select_related("actor").all()
