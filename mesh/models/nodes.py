"""Nodes, the groups allowed to use them, and the secrets a node joins and connects with."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models

from mesh.agent.skill_names import Skill

NODE_ID_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,62}$",
    "Use 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit.",
)


def default_skill_config() -> dict[str, Any]:
    """Shell on, files on, browser off, two tasks at once."""
    return {
        Skill.SHELL.value: True,
        Skill.FILES.value: True,
        Skill.BROWSER.value: False,
        "max_concurrent_tasks": 2,
    }


def default_sandbox_policy() -> dict[str, Any]:
    """The agent's default policy (the agent package ships with the hub)."""
    from mesh.agent.sandbox import default_policy

    return dict(default_policy())


class NodeStatus(models.TextChoices):
    ONLINE = "online", "online"
    BUSY = "busy", "busy"
    OFFLINE = "offline", "offline"


class Node(models.Model):
    """A machine that runs an agent and dials into the hub; `node_id` never changes."""

    node_id = models.CharField(max_length=63, unique=True, validators=[NODE_ID_VALIDATOR])
    display_name = models.CharField(max_length=150)
    description = models.TextField(blank=True)
    skill_config = models.JSONField(default=default_skill_config)
    sandbox_policy = models.JSONField(default=default_sandbox_policy)
    capabilities = models.JSONField(default=dict, blank=True)
    version = models.CharField(max_length=64, blank=True)
    platform = models.CharField(max_length=128, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    # What the agent runs on, from its Hello: "CPython 3.10.12", "Ubuntu 22.04.4 LTS".
    agent_python = models.CharField(max_length=64, blank=True)
    agent_os = models.CharField(max_length=128, blank=True)
    is_active = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.OFFLINE)
    offline_reason = models.CharField(max_length=64, blank=True, default="never_connected")
    last_seen_at = models.DateTimeField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    # Which stream currently holds the node (opaque id of one Connect call), and since when the
    # node has had no stream: the reconnect grace period counts from `disconnected_at`.
    connection_id = models.CharField(max_length=64, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    # Set when an admin asks for a new credential; the runmesh holding the stream mints it.
    rotation_requested_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["node_id"]
        indexes = [models.Index(fields=["status", "last_seen_at"])]

    def __str__(self) -> str:
        return self.node_id

    @property
    def max_concurrent_tasks(self) -> int:
        return max_concurrent_tasks(self.skill_config)


class NodeGroupAccess(models.Model):
    """Members of `group` may see and use `node`."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="group_access")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="node_access")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["node_id", "group_id"]
        constraints = [
            models.UniqueConstraint(fields=["node", "group"], name="mesh_node_group_unique")
        ]
        # A user's grants by group, covering the node: the node list counts and pages over it.
        indexes = [models.Index(fields=["group", "node"], name="mesh_access_group_node")]

    def __str__(self) -> str:
        return f"{self.node_id}:{self.group_id}"


class NodeInvite(models.Model):
    """A single-use invite token (SHA-256 stored) that a node trades for its credential."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="invites")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"invite {self.pk} for {self.node_id}"


class CredentialState(models.TextChoices):
    ACTIVE = "active", "active"
    PENDING = "pending", "pending"  # sent in a rotation, not yet acknowledged by the node
    REVOKED = "revoked", "revoked"


class NodeCredential(models.Model):
    """The long-lived secret a node connects with (SHA-256 stored); rotatable."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="credentials")
    secret_hash = models.CharField(max_length=64, unique=True)
    fingerprint = models.CharField(max_length=12)
    state = models.CharField(
        max_length=16, choices=CredentialState.choices, default=CredentialState.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["node", "state"])]

    def __str__(self) -> str:
        return f"credential {self.fingerprint} for {self.node_id}"


def max_concurrent_tasks(skill_config: Any) -> int:
    """How many tasks a node with this skill config runs at once (at least 1, default 2)."""
    try:
        return max(1, int((skill_config or {}).get("max_concurrent_tasks", 2)))
    except (TypeError, ValueError, AttributeError):
        return 2
