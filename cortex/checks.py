"""Project-wide system checks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_production_secrets(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """The development keys must never serve a deployment."""
    from cortex import settings as project_settings

    problems: list[checks.CheckMessage] = []
    if settings.SECRET_KEY == project_settings._DEV_SECRET_KEY:
        problems.append(checks.Error("CORTEX_SECRET_KEY is the development key.", id="cortex.E001"))
    if project_settings._DEV_FIELD_KEY in settings.FIELD_KEYS:
        problems.append(
            checks.Error("CORTEX_FIELD_KEYS holds the development key.", id="cortex.E002")
        )
    return problems
