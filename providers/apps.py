"""App configuration for providers: every LLM, speech and transcription provider."""

from __future__ import annotations

from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from providers.registry import autodiscover

        autodiscover()
