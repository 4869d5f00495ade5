"""An admin's switch that turns one tool off for everyone or for one group."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ToolSwitch(models.Model):
    """The tool `tool_name` is off for members of `group`, or for everyone when `group` is null."""

    tool_name = models.CharField(max_length=64)
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="tool_switches"
    )
    reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tool_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tool_name", "group"],
                condition=Q(group__isnull=False),
                name="tools_switch_unique_per_group",
            ),
            models.UniqueConstraint(
                fields=["tool_name"],
                condition=Q(group__isnull=True),
                name="tools_switch_unique_global",
            ),
        ]

    def __str__(self) -> str:
        scope = self.group.name if self.group is not None else "everyone"
        return f"{self.tool_name} off for {scope}"
