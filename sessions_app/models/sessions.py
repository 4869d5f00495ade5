"""A chat session, the nodes attached to it, and its per-session settings."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApprovalPolicy(models.TextChoices):
    AUTO = "auto", "Run every tool call"
    ASK = "ask", "Ask before exec/write tools and sensitive commands"
    RULES = "rules", "Ask before every tool call but reads that no standing rule covers"


class ChatSession(models.Model):
    """One conversation of one user; `last_seq` numbers its events for replay."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions"
    )
    title = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=32, blank=True, help_text="LLM backend override.")
    model = models.CharField(max_length=200, blank=True, help_text="LLM model override.")
    approval_policy = models.CharField(
        max_length=8, choices=ApprovalPolicy.choices, default=ApprovalPolicy.ASK
    )
    is_archived = models.BooleanField(default=False)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    last_seq = models.PositiveBigIntegerField(default=0)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-updated_at", "-id")
        indexes = [models.Index(fields=("owner", "-updated_at"))]

    def __str__(self) -> str:
        # Not the title: it is made from the first message, and admin pages print this.
        return f"Session {self.pk}"


class SessionNode(models.Model):
    """A node attached to a session, with the working directory tool calls start in."""

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="nodes")
    node = models.ForeignKey("mesh.Node", on_delete=models.CASCADE, related_name="chat_sessions")
    working_dir = models.CharField(max_length=1024, blank=True)
    attached_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attached_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("attached_at", "id")
        constraints = [
            models.UniqueConstraint(fields=("session", "node"), name="session_node_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}:{self.node_id}"
