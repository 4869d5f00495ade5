"""App configuration for agents (scheduled agents)."""

from __future__ import annotations

from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Scheduled agents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agents.services.runs import webhook_deliveries_sweep
        from cortex.sweeps import sweep_register

        sweep_register("agents.webhook_deliveries_sweep", webhook_deliveries_sweep)
