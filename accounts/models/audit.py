"""The audit log: append-only, written only through `accounts.services.audit_record`."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise PermissionError("Audit events are append-only.")

    def delete(self) -> NoReturn:
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    """Who did what to which object, from where; `details` never holds a secret."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=32, default="api")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target_type}:{self.target_id}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("Audit events are append-only.")


class AuditRefusalWindow(models.Model):
    """How often one actor met one refusal in one minute: the count behind an aggregated row.

    Refusals can come in floods (a script retrying, a scanner). `audit_refusal` writes one
    audit event for the first refusal of an actor and reason in a minute and counts the rest
    here; audit rows themselves are never updated.
    """

    window_start = models.DateTimeField(db_index=True)
    actor_key = models.CharField(max_length=255)
    action = models.CharField(max_length=100)
    reason = models.CharField(max_length=64)
    count = models.PositiveIntegerField(default=1)
    first_event = models.ForeignKey(
        AuditEvent, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["actor_key", "action", "reason", "window_start"],
                name="audit_refusal_window_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.window_start:%Y-%m-%d %H:%M} {self.action} {self.reason} x{self.count}"
