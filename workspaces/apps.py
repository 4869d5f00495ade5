"""Shared workspaces of chat sessions: the hub mirror, its manifest and per-node sync state."""

from __future__ import annotations

from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workspaces"
    verbose_name = "Workspaces"

    def ready(self) -> None:
        from cortex.sweeps import sweep_register
        from mesh.services.task_hooks import task_end_register
        from workspaces.services import downloads, sync, transfers

        sweep_register("workspaces", sync.workspace_sweep)
        sweep_register("workspaces.transfers", transfers.transfers_sweep, every_s=10)
        task_end_register("workspaces", sync.on_task_end)
        task_end_register("workspaces.downloads", downloads.on_task_end)
        task_end_register("workspaces.transfers", transfers.on_task_end)
