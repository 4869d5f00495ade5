"""App configuration for preferences."""

from __future__ import annotations

from django.apps import AppConfig


class PreferencesConfig(AppConfig):
    name = "preferences"
    verbose_name = "Preferences"
    default_auto_field = "django.db.models.BigAutoField"
