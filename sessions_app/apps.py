"""App configuration for sessions_app."""

from __future__ import annotations

from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Chat sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cortex.sweeps import sweep_register
        from sessions_app.services import turns_reap_stale

        # Turns whose runner died are ended by the sweeper, not by whoever reads them next.
        sweep_register("sessions.turns_reap_stale", turns_reap_stale)
        from sessions_app.services.sessions import screenshots_of_deleted_chats_sweep

        sweep_register(
            "sessions.screenshots_of_deleted_chats",
            screenshots_of_deleted_chats_sweep,
            every_s=300,
        )
