"""Messages of a session, pending approvals of tool calls, and the numbered event log."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from sessions_app.models.sessions import ChatSession


class MessageRole(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    SYSTEM = "system"


class MessageStatus(models.TextChoices):
    PENDING = "pending"
    STREAMING = "streaming"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Message(models.Model):
    """One message; assistant and tool messages point at the user message of their turn."""

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    turn = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="turn_messages"
    )
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    content = models.TextField(blank=True)
    #: user: the recording the content was transcribed from (a storage name, never a path)
    audio = models.FileField(upload_to="voice/", blank=True)
    audio_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.DONE
    )
    #: assistant: [{"id", "name", "arguments" (parsed dict or null), "raw_arguments"}]
    tool_calls = models.JSONField(default=list, blank=True)
    #: tool: the call this message answers, the tool's data and the mesh tasks it started
    tool_call_id = models.CharField(max_length=128, blank=True)
    tool_name = models.CharField(max_length=128, blank=True)
    tool_result = models.JSONField(null=True, blank=True)
    task_ids = models.JSONField(default=list, blank=True)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=200, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        indexes = [
            models.Index(fields=("session", "id")),
            models.Index(fields=("status",)),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.pk} ({self.status})"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class ToolApproval(models.Model):
    """A tool call waiting for the user's yes or no, and the decision once made."""

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="approvals")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="approvals")
    tool_call_id = models.CharField(max_length=128)
    tool_name = models.CharField(max_length=128)
    node_id = models.CharField(max_length=63, blank=True)
    arguments = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(
                fields=("message", "tool_call_id"), name="approval_one_per_tool_call"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} {self.status}"


class TurnEvent(models.Model):
    """A frame sent to the session's watchers, stored so a reconnecting client can replay it."""

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("seq",)
        constraints = [
            models.UniqueConstraint(fields=("session", "seq"), name="turn_event_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.seq} {self.type}"
