"""App configuration for mesh."""

from __future__ import annotations

from django.apps import AppConfig


class MeshConfig(AppConfig):
    name = "mesh"
    verbose_name = "Mesh"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cortex.sweeps import sweep_register
        from mesh.services.browser import browser_screenshots_sweep
        from mesh.services.terminals import terminals_reap_lost

        # A listing of stored screenshots: every few minutes is soon enough for orphans.
        sweep_register("mesh.browser_screenshots_sweep", browser_screenshots_sweep, every_s=300)
        # A terminal whose node never comes back ends `lost` (its node cannot report an exit).
        sweep_register("mesh.terminals_reap_lost", terminals_reap_lost)
