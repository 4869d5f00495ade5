"""System checks of the console: the browser libraries its templates load are installed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.core import checks

TEMPLATES = Path(__file__).resolve().parent / "templates"
VENDOR_REF = re.compile(r"""\{%\s*static\s+['"](vendor/[^'"]+)['"]\s*%\}""")


def missing_vendor_files(templates: Path = TEMPLATES) -> list[str]:
    """Vendored files a template names that no static finder has (npm ci / make vendor not run)."""
    named = {
        name for page in templates.rglob("*.html") for name in VENDOR_REF.findall(page.read_text())
    }
    return sorted(name for name in named if not finders.find(name))


@checks.register(checks.Tags.staticfiles)
def check_vendor_files(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    missing = missing_vendor_files()
    if not missing:
        return []
    return [
        checks.Warning(
            f"The console's browser libraries are not installed: {', '.join(missing)}.",
            hint="Run `make vendor` (npm ci in console/, then scripts/vendor_static.py).",
            id="console.W001",
        )
    ]
