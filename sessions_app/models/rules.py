"""Standing approval rules: "always allow" answers that spare a person the next question."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from sessions_app.models.sessions import ChatSession


class ApprovalRule(models.Model):
    """This tool, with these command patterns (or this action), on this node, for its owner.

    `session` set: only in that chat; empty: in every chat of the owner. A rule never covers a
    command the node's policy denies or marks sensitive (checked at each use, not at creation).
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="approval_rules"
    )
    session = models.ForeignKey(
        ChatSession,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approval_rules",
    )
    node = models.ForeignKey("mesh.Node", on_delete=models.CASCADE, related_name="approval_rules")
    tool_name = models.CharField(max_length=128)
    #: allow-list entries in the sandbox policy's syntax (`git status`, `ls`, `make *`)
    command_patterns = models.JSONField(default=list, blank=True)
    #: for tools without a command: the one `action` argument allowed (`list`, `read`)
    action = models.CharField(max_length=32, blank=True)
    created_from = models.ForeignKey(
        "sessions_app.ToolApproval",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    use_count = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("owner", "node", "tool_name"))]

    def __str__(self) -> str:
        what = ", ".join(self.command_patterns) or self.action
        return f"{self.tool_name} {what} on {self.node_id}"

    def clean(self) -> None:
        patterns = self.command_patterns
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValidationError({"command_patterns": ["Must be a list of strings."]})
        if bool(patterns) == bool(self.action):
            raise ValidationError(
                {"command_patterns": ["Give command patterns or an action, not both or neither."]}
            )
