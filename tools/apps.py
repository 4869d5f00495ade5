"""App configuration for tools: discovers the tool definitions at start-up."""

from __future__ import annotations

from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "tools"
    verbose_name = "Tools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Import every tool definition, register the system checks, then fix the set."""
        from tools import checks  # noqa: F401  # registers the system checks
        from tools.registry import autodiscover, registry

        if not registry.frozen:
            autodiscover(registry)
            registry.freeze()
