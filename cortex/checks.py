"""Project-wide system checks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from cortex.local_state import LEGACY_DEV_FIELD_KEY, LEGACY_DEV_SECRET_KEY

# Keys that earlier versions shipped in the code for development: public, so never acceptable.
PUBLIC_SECRET_KEYS = frozenset({LEGACY_DEV_SECRET_KEY})
PUBLIC_FIELD_KEYS = frozenset({LEGACY_DEV_FIELD_KEY})


@checks.register(checks.Tags.security, deploy=True)
def check_production_secrets(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Keys once published in the code must never serve a deployment."""
    problems: list[checks.CheckMessage] = []
    if settings.SECRET_KEY in PUBLIC_SECRET_KEYS:
        problems.append(checks.Error("CORTEX_SECRET_KEY is the development key.", id="cortex.E001"))
    if PUBLIC_FIELD_KEYS.intersection(settings.FIELD_KEYS):
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
