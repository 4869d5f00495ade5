"""The project package is an app too, for its management commands and system checks."""

from __future__ import annotations

from django.apps import AppConfig


class CortexConfig(AppConfig):
    name = "cortex"
    verbose_name = "Cortex Hub"

    def ready(self) -> None:
        from cortex import checks  # noqa: F401  # registers the system checks
        from cortex.api import schema  # noqa: F401  # registers the OpenAPI auth extension
