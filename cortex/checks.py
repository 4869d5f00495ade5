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


@checks.register()
def check_static_files_collected(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Without DEBUG, pages link hashed static names, which exist only after collectstatic."""
    from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage

    if settings.DEBUG or not isinstance(staticfiles_storage, ManifestFilesMixin):
        return []
    if staticfiles_storage.exists(staticfiles_storage.manifest_name):
        return []
    return [
        checks.Warning(
            f"Static files are not collected in {settings.STATIC_ROOT}: pages will fail.",
            hint="Run `python manage.py collectstatic --noinput` (`make run` and the image do).",
            id="cortex.W001",
        )
    ]
