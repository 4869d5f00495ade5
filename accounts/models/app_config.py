"""Run-time configuration that admins change without a restart (one row)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppConfig(models.Model):
    """The hub's run-time switches; a single row with pk=1."""

    SINGLETON_PK = 1

    allow_password_login = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "app configuration"
        verbose_name_plural = "app configuration"
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="accounts_appconfig_singleton")
        ]

    def __str__(self) -> str:
        return "App configuration"
