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
    """Return a copy where every text value under a secret-looking key is replaced.

    Only strings and bytes are secrets: a flag such as `allow_password_login: true` stays
    readable, and nested mappings are searched further.
    """
    if isinstance(value, Mapping):
        return {k: _redact_item(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _redact_item(key: str, value: Any) -> Any:
    if isinstance(value, str | bytes) and value and SECRET_KEY_PATTERN.search(key):
        return REDACTED
    return redact(value)
