"""The project package is an app too, for its management commands and system checks."""

from __future__ import annotations

from django.apps import AppConfig


class CortexConfig(AppConfig):
    name = "cortex"
    verbose_name = "Cortex Hub"

    def ready(self) -> None:
        from django.core.signals import got_request_exception

        from cortex import checks  # noqa: F401  # registers the system checks
        from cortex.api import schema  # noqa: F401  # registers the OpenAPI auth extension
        from cortex.middleware import mark_outage

        # An outage of the database or Redis answers 503, never 500 (cortex/faults.py).
        got_request_exception.connect(mark_outage, dispatch_uid="cortex.mark_outage")
