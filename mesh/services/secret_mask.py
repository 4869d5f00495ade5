"""Mask the hub's own secrets in node output before it is stored, streamed or shown to a model.

A command on a node can print a provider key (`env`, a config file, a shell history): the hub
knows those keys and replaces them with MASK before the output is stored, so neither the task
output API, the live console frames nor the model (which reads stored output) ever sees them.

Masked: provider keys stored (encrypted) in any preferences layer or given through the
environment defaults, and the OIDC client secret. Limits, by design or for now:
- Hashed secrets (API tokens, node credentials, invites, WS tickets) cannot be matched: only
  their hash is stored. Such a value in node output stays as printed.
- A secret split across two output chunks is not matched (chunks are masked one at a time).
- Secrets shorter than MIN_SECRET_LENGTH are ignored (masking them would mangle normal text).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings

from cortex.redaction import SECRET_KEY_PATTERN
from mesh import store

logger = logging.getLogger("cortex.mesh.output")

MASK = b"[masked]"
MIN_SECRET_LENGTH = 8

_lock = threading.Lock()
_cache: dict[str, Any] = {"version": None, "secrets": ()}


def _version() -> tuple[Any, ...]:
    """Changes whenever a stored secret or the configured ones may have changed."""
    count, latest = store.secret_layers_version()
    return (
        count,
        latest,
        getattr(settings, "OIDC_RP_CLIENT_SECRET", ""),
        repr(getattr(settings, "PREFERENCES_ENV_DEFAULTS", {})),
        tuple(getattr(settings, "FIELD_KEYS", []) or ()),
    )


def _collect() -> tuple[bytes, ...]:
    from preferences.crypto import decrypt
    from preferences.errors import SecretUnavailable
    from preferences.models import PreferenceLayer

    found: set[str] = set()
    for secrets in PreferenceLayer.objects.exclude(secrets={}).values_list("secrets", flat=True):
        for token in (secrets or {}).values():
            try:
                found.add(decrypt(str(token)))
            except SecretUnavailable:
                logger.warning("a stored provider secret cannot be decrypted; not masked")
    for values in (getattr(settings, "PREFERENCES_ENV_DEFAULTS", {}) or {}).values():
        for key, value in (values or {}).items():
            if isinstance(value, str) and SECRET_KEY_PATTERN.search(str(key)):
                found.add(value)
    found.add(getattr(settings, "OIDC_RP_CLIENT_SECRET", "") or "")
    usable = {s.encode() for s in found if len(s) >= MIN_SECRET_LENGTH}
    # Longest first, so a secret that contains another is masked whole.
    return tuple(sorted(usable, key=len, reverse=True))


def known_secrets() -> tuple[bytes, ...]:
    """The plain secrets the hub holds (recomputed only when one may have changed)."""
    version = _version()
    with _lock:
        if _cache["version"] == version:
            cached: tuple[bytes, ...] = _cache["secrets"]
            return cached
    secrets = _collect()
    with _lock:
        _cache.update(version=version, secrets=secrets)
    return secrets


def mask_secrets(data: bytes) -> bytes:
    """`data` with every known secret replaced by MASK."""
    for secret in known_secrets():
        if secret in data:
            data = data.replace(secret, MASK)
    return data


def mask_value(value: Any) -> Any:
    """A copy of a JSON-like value (a task's result or error text) with known secrets masked."""
    if isinstance(value, str):
        if not value:  # the common empty error text costs no lookup of the secrets
            return value
        masked = mask_secrets(value.encode("utf-8", "surrogatepass"))
        return masked.decode("utf-8", "surrogatepass")
    if isinstance(value, dict):
        return {key: mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(item) for item in value]
    return value
