"""Validation of parameter values against a backend's declarations, shared by writes and reads."""

from __future__ import annotations

from typing import Any

from providers import ssrf
from providers.base import KINDS, Backend, Parameter
from providers.errors import BlockedAddress
from providers.registry import registry

MAX_STRING = 2000
MAX_SECRET = 8192
#: Fields every layer may carry besides backend parameters.
LAYER_META_FIELDS = ("provider", "locked", "allowed_providers", "allowed_models")


class Keep:
    """Marker: the caller sent the masked secret back, so the stored value stays."""


KEEP = Keep()


def known_parameters(kind: str, provider: str) -> dict[str, Parameter]:
    """Parameters a layer may set: the provider's, or any backend's of the kind if blank."""
    if provider:
        return {p.name: p for p in registry.get(kind, provider).parameters}
    found: dict[str, Parameter] = {}
    for backend in registry.for_kind(kind):
        for parameter in backend.parameters:
            found.setdefault(parameter.name, parameter)
    return found


def lockable_fields(kind: str) -> set[str]:
    return {"provider", *known_parameters(kind, "")}


def is_masked(value: Any) -> bool:
    """The masked shape a client may echo back: {"configured": true, ...} or "****"."""
    if isinstance(value, dict):
        return value.get("configured") is True
    return isinstance(value, str) and len(value) >= 3 and set(value) == {"*"}


def clean_secret(value: Any) -> str | None | Keep:
    """None clears, the masked shape keeps, a string sets; anything else is an error."""
    if (
        value is None
        or value == ""
        or (isinstance(value, dict) and value.get("configured") is False)
    ):
        return None
    if is_masked(value):
        return KEEP
    if isinstance(value, str) and len(value) <= MAX_SECRET:
        return value
    raise ValueError("Send a string to set, null to clear, or the masked value to keep.")


def clean_value(parameter: Parameter, value: Any) -> Any:
    """Check one non-secret value's type; raises ValueError with a human message."""
    kind = parameter.type
    if kind in ("string", "url"):
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise ValueError("Must be a string.")
        if kind == "url":
            try:
                ssrf.check_url(value, resolve=False)
            except BlockedAddress as exc:
                raise ValueError(exc.message) from None
            return value.rstrip("/")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("Must be an integer.")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Must be a number.")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError("Must be true or false.")
        return value
    raise ValueError(f"Unsupported parameter type {kind!r}.")  # pragma: no cover


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        from cortex.errors import NotFound

        raise NotFound(f"Unknown kind {kind!r}.")


def backend_or_none(kind: str, provider: str) -> Backend | None:
    return registry.get(kind, provider) if provider else None
