"""The task journal: what was asked of a node, what became of it, and what it printed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from mesh.agent.skill_names import Skill
from mesh.models.nodes import Node


class TaskStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    DISPATCHED = "dispatched", "dispatched"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    TIMED_OUT = "timed_out", "timed_out"
    LOST = "lost", "lost"


ACTIVE_STATUSES = (TaskStatus.DISPATCHED, TaskStatus.RUNNING)
OPEN_STATUSES = (TaskStatus.QUEUED, TaskStatus.DISPATCHED, TaskStatus.RUNNING)
TERMINAL_STATUSES = (
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
    TaskStatus.TIMED_OUT,
    TaskStatus.LOST,
)


class TaskKind(models.TextChoices):
    SHELL = Skill.SHELL.value, Skill.SHELL.value
    FILES = Skill.FILES.value, Skill.FILES.value
    BROWSER = Skill.BROWSER.value, Skill.BROWSER.value


def default_deliver_by() -> datetime:
    """Now plus the default delivery timeout (`CORTEX_TASK_DELIVERY_TIMEOUT`)."""
    return timezone.now() + timedelta(seconds=float(settings.MESH_TASK_DELIVERY_TIMEOUT))


class Task(models.Model):
    """One unit of work for one node; its row is the only record of its state."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="tasks")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chat_session_id = models.BigIntegerField(null=True, blank=True)
    tool_call_id = models.CharField(max_length=128, blank=True)
    idempotency_key = models.CharField(max_length=128, blank=True)
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    payload = models.JSONField(default=dict)
    timeout = models.FloatField(default=30.0)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.QUEUED)
    exit_code = models.IntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=255, blank=True)
    # Output bookkeeping: highest stored seq, bytes ever received, bytes dropped by the cap.
    last_seq = models.PositiveBigIntegerField(default=0)
    output_bytes = models.PositiveBigIntegerField(default=0)
    stored_bytes = models.PositiveBigIntegerField(default=0)
    dropped_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # A queued task not claimed by its node before this moment ends `timed_out` with
    # error_code `not_delivered`; the claim skips it, so it never runs later.
    deliver_by = models.DateTimeField(default=default_deliver_by)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["node", "status", "created_at"]),
            models.Index(fields=["status", "dispatched_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "requested_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="mesh_task_idempotency_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} task {self.id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class OutputStreamName(models.TextChoices):
    STDOUT = "stdout", "stdout"
    STDERR = "stderr", "stderr"


class TaskOutputChunk(models.Model):
    """One numbered piece of a task's output; `(task, seq)` is stored at most once."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveBigIntegerField()
    stream = models.CharField(max_length=8, choices=OutputStreamName.choices)
    data = models.BinaryField()
    # Byte offset of this chunk in the task's whole output: the cap keeps the head by offset.
    offset = models.PositiveBigIntegerField(default=0)
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["task", "seq"], name="mesh_output_task_seq_unique")
        ]

    def __str__(self) -> str:
        return f"{self.task_id}#{self.seq}"
