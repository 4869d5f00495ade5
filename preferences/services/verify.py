"""Verify a provider configuration with a real, minimal call; audited."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.services.audit import audit_record
from preferences import params
from preferences.errors import MissingParameter
from preferences.selectors import effective_config
from providers import ssrf
from providers.base import VerifyResult
from providers.errors import BlockedAddress

if TYPE_CHECKING:
    from accounts.models import User

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 30.0


def config_verify(
    *,
    actor: User,
    kind: str,
    overrides: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> tuple[str, VerifyResult]:
    """Verify the effective config, with `overrides` applied like a session override.

    Masked secrets in `overrides` mean "use the stored one". Returns (provider, result);
    raises ProviderNotConfigured, MissingParameter, SecretUnavailable or a lock/limit error
    before any call is made.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if not params.is_masked(v)}
    config = effective_config(user=actor, kind=kind, session_override=overrides or None)
    backend = config.backend()
    missing = [
        p.name for p in backend.parameters if p.required and config.values.get(p.name) in (None, "")
    ]
    if missing:
        raise MissingParameter(
            f"Set {', '.join(missing)} before verifying.",
            fields={name: ["This field is required."] for name in missing},
        )
    timeout = max(0.1, min(float(timeout), MAX_TIMEOUT))
    result: VerifyResult | None = None
    base_url = config.values.get("base_url")
    if backend.network and base_url:
        started = time.monotonic()
        try:
            ssrf.check_url(str(base_url))
        except BlockedAddress as exc:
            latency = int((time.monotonic() - started) * 1000)
            result = VerifyResult(False, latency, "blocked_address", exc.message)
    if result is None:
        result = backend.verify(dict(config.values), timeout)
    audit_record(
        actor=actor,
        action="preferences.verify",
        target_type="preferences.kind",
        target_id=kind,
        audit_context=audit_context,
        details={
            "kind": kind,
            "provider": config.provider,
            "ok": result.ok,
            "error_code": result.error_code,
            "latency_ms": result.latency_ms,
            "fields_overridden": sorted(overrides),
        },
    )
    return config.provider, result
