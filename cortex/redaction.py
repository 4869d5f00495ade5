"""Keep secrets out of anything that is stored or shown: audit details, logs, errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET_KEY_PATTERN = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|credential|authorization|cookie|private[_-]?key)",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """Return a copy where every value under a secret-looking key is replaced."""
    if isinstance(value, Mapping):
        return {
            k: (
                REDACTED if SECRET_KEY_PATTERN.search(str(k)) and v not in (None, "") else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
