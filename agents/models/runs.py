"""One run of an agent: a claimed tick (or a manual / webhook start) and the chat it became."""

from __future__ import annotations

from django.db import models


class RunStatus(models.TextChoices):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    LOST = "lost"
    SKIPPED = "skipped"


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule"
    CATCH_UP = "catch_up"
    MANUAL = "manual"
    WEBHOOK = "webhook"


ACTIVE = (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)
UNFINISHED = (RunStatus.SCHEDULED, *ACTIVE)


class AgentRun(models.Model):
    """Unique per (agent, scheduled_for): inserting the row is how a process fires a tick, so
    two processes can never fire the same one. `claimed_by` and `heartbeat_at` say which
    process runs it and that it is alive."""

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices)
    scheduled_for = models.DateTimeField()
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.SCHEDULED)
    context = models.TextField(blank=True)  # a webhook's body, handed to the run
    session = models.ForeignKey(
        "sessions_app.ChatSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="agent_runs",
    )
    claimed_by = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    #: The owner asked to stop a running run; the process driving it ends it `cancelled`.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    feedback = models.TextField(blank=True)
    reworks = models.PositiveSmallIntegerField(default=0)
    evaluations = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-scheduled_for", "-id")
        constraints = [
            models.UniqueConstraint(fields=("agent", "scheduled_for"), name="agent_run_tick_once"),
        ]
        indexes = [
            models.Index(fields=("status", "scheduled_for")),
            models.Index(fields=("status", "heartbeat_at")),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of agent {self.agent_id}"
