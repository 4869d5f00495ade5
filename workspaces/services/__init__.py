"""Workspace writes: configuration, the hub mirror, and syncing nodes."""

from workspaces.services.config import workspace_configure
from workspaces.services.files import (
    workspace_active,
    workspace_file_delete,
    workspace_file_write,
)

__all__ = [
    "workspace_active",
    "workspace_configure",
    "workspace_file_delete",
    "workspace_file_write",
]
