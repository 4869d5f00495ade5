"""Keeping attached nodes in step with the hub mirror (layer 2 fills this in)."""

from __future__ import annotations

from typing import Any


def workspace_sync_soon(*, workspace_id: int) -> None:
    """After the caller's transaction commits, bring the workspace's nodes up to date."""
    del workspace_id


def workspace_sweep() -> dict[str, Any]:
    """One sweep round: reconcile syncing nodes; drop mirrors of deleted sessions."""
    return {}
