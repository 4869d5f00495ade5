"""Trust figures: each test records its own, merged in one JSON file the report renders."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings

#: Where the figures go; scripts/trust_report.py points this at its own file.
ENV_VAR = "CORTEX_TRUST_FIGURES"


def figures_path() -> Path:
    """The figures file (var/trust-figures.json unless CORTEX_TRUST_FIGURES says otherwise)."""
    default = Path(settings.BASE_DIR) / "var" / "trust-figures.json"
    return Path(os.environ.get(ENV_VAR) or default)


def record(
    name: str,
    value: float,
    *,
    mode: str = "sum",
    checked: int = 0,
    detail: str = "",
    source: str = "",
) -> None:
    """Fold `value` into figure `name`: counts add up, ratios keep the worst (`min`/`max`)."""
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Tests of one run may record from several threads; hold a lock over read-modify-write.
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _fold(path, name, value, mode=mode, checked=checked, detail=detail, source=source)


def _fold(
    path: Path, name: str, value: float, *, mode: str, checked: int, detail: str, source: str
) -> None:
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    entry = data.setdefault(name, {"value": 0, "checked": 0, "sources": [], "details": []})
    first = not entry["checked"] and not entry["sources"]
    if mode == "min":
        entry["value"] = value if first else min(entry["value"], value)
    elif mode == "max":
        entry["value"] = value if first else max(entry["value"], value)
    else:
        entry["value"] += value
    entry["checked"] += checked
    if source and source not in entry["sources"]:
        entry["sources"].append(source)
    if detail:
        entry["details"].append(detail)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True))
    partial.replace(path)
