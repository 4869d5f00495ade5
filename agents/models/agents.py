"""An agent: who owns it, what each run starts with, when it fires, and its limits."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class TriggerKind(models.TextChoices):
    INTERVAL = "interval", "Every N seconds"
    CRON = "cron", "Cron expression"
    MANUAL = "manual", "Only run now and webhook"


class CatchUp(models.TextChoices):
    SKIP = "skip", "Skip missed ticks"
    ONCE = "once", "Run once for missed ticks"


class Agent(models.Model):
    """One scheduled agent of one owner; `next_fire_at` is the next tick the scheduler claims.

    The webhook secret is stored encrypted (`preferences.crypto`) and shown only at creation
    and on rotation.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agents"
    )
    name = models.CharField(max_length=120)
    instructions = models.TextField(blank=True)
    prompt = models.TextField()
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=200, blank=True)
    nodes = models.ManyToManyField("mesh.Node", blank=True, related_name="agents")
    skills = models.JSONField(default=list, blank=True)
    #: [{"node_id", "tool", "command"? | "action"?}]: tool calls that run without a person
    unattended = models.JSONField(default=list, blank=True)
    trigger_kind = models.CharField(max_length=8, choices=TriggerKind.choices)
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    cron_expression = models.CharField(max_length=120, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    catch_up = models.CharField(max_length=4, choices=CatchUp.choices, default=CatchUp.SKIP)
    paused = models.BooleanField(default=False)
    next_fire_at = models.DateTimeField(null=True, blank=True, db_index=True)
    max_steps = models.PositiveIntegerField(default=12)
    max_runtime_s = models.PositiveIntegerField(default=900)
    max_tokens = models.PositiveIntegerField(default=200_000)
    approval_timeout_s = models.PositiveIntegerField(default=3600)
    rubric = models.TextField(blank=True)
    rework_threshold = models.PositiveSmallIntegerField(default=70)
    max_reworks = models.PositiveSmallIntegerField(default=1)
    webhook_secret = models.TextField(blank=True)  # ciphertext (preferences.crypto)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        indexes = [models.Index(fields=("paused", "next_fire_at"))]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rework_threshold__lte=100), name="agent_threshold_0_100"
            ),
        ]

    def __str__(self) -> str:
        return f"Agent {self.pk}: {self.name}"

    def clean(self) -> None:
        if self.trigger_kind == TriggerKind.INTERVAL and not self.interval_seconds:
            raise ValidationError({"interval_seconds": ["Required for an interval trigger."]})
        if self.trigger_kind == TriggerKind.CRON and not self.cron_expression:
            raise ValidationError({"cron_expression": ["Required for a cron trigger."]})
