"""A session's workspace, the hub mirror's manifest (rows, not memory) and per-node sync state."""

from __future__ import annotations

from django.db import models


class WorkspaceSource(models.TextChoices):
    NONE = "none", "No workspace"
    HUB = "hub", "A folder on the hub, pushed to every attached node"
    NODE = "node", "A folder on one lead node, mirrored on the hub and the other nodes"


class SyncState(models.TextChoices):
    IN_SYNC = "in_sync", "In sync"
    SYNCING = "syncing", "Syncing"
    DRIFT = "drift", "Drift"
    OFFLINE = "offline", "Offline"


class Workspace(models.Model):
    """One per chat session; `source` decides who wins."""

    session = models.OneToOneField(
        "sessions_app.ChatSession", on_delete=models.CASCADE, related_name="workspace"
    )
    source = models.CharField(
        max_length=8, choices=WorkspaceSource.choices, default=WorkspaceSource.NONE
    )
    lead_node = models.ForeignKey(
        "mesh.Node", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    path = models.CharField(max_length=4096, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Workspace of session {self.session_id}"


class WorkspaceFile(models.Model):
    """One file of the hub mirror; its bytes are the blob named by `sha256` in storage."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=4096)
    size = models.PositiveBigIntegerField()
    mode = models.PositiveIntegerField(default=0o644)
    mtime = models.DateTimeField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ("path",)
        constraints = [
            models.UniqueConstraint(fields=("workspace", "path"), name="workspace_file_unique"),
        ]

    def __str__(self) -> str:
        return self.path


class WorkspaceNode(models.Model):
    """Sync state of one attached node; `pending` counts transfers still under way."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="node_states")
    node = models.ForeignKey("mesh.Node", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=8, choices=SyncState.choices, default=SyncState.SYNCING)
    pending = models.PositiveIntegerField(default=0)
    drift = models.JSONField(default=list, blank=True)
    #: What the hub believes the node holds ({path: sha256}), from its last manifest and the
    #: transfers since; null: ask the node for a manifest first (attach, reconnect, failure).
    known = models.JSONField(null=True, blank=True)
    #: The last `known` before it was forgotten: a manifest that differs from the mirror where
    #: the node still holds what the hub last put there is stale, not drift.
    last_known = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("node__node_id",)
        constraints = [
            models.UniqueConstraint(fields=("workspace", "node"), name="workspace_node_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}:{self.node_id}"


class TransferState(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    DRIFT = "drift", "Changed on the node, or refused"


class TransferPurpose(models.TextChoices):
    WATCH = "watch", "A lead's file too large for one watch answer"
    DOWNLOAD = "download", "A browser download on another node"


class WorkspaceTransfer(models.Model):
    """One node file coming into the mirror in ranges (`workspaces.services.transfers`).

    The ranges land in a staging file at their offsets; `done` lists the range numbers written.
    `generation` counts restarts: a range task of an older generation is ignored. `file_size` /
    `file_mtime_ns` are what the first range of this generation saw; a range that sees other
    values means the file changed meanwhile."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="transfers")
    node = models.ForeignKey("mesh.Node", on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=4096)
    #: The file on the node, relative to its workspace root (where the ranged reads go).
    node_path = models.CharField(max_length=8192)
    purpose = models.CharField(max_length=8, choices=TransferPurpose.choices)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    mode = models.PositiveIntegerField(default=0o644)
    state = models.CharField(
        max_length=8, choices=TransferState.choices, default=TransferState.RUNNING
    )
    error = models.CharField(max_length=64, blank=True)
    generation = models.PositiveIntegerField(default=0)
    restarts = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    next_range = models.PositiveIntegerField(default=0)
    done = models.JSONField(default=list, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    file_mtime_ns = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("pk",)
        constraints = [
            models.UniqueConstraint(fields=("workspace", "path"), name="workspace_transfer_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}:{self.path}"
