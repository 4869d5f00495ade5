"""Shared plumbing for network backends: guarded clients and one error classification."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urljoin

import httpx
import httpx2

from preferences import ssrf
from preferences.backends.base import VerifyResult
from preferences.errors import BlockedAddress

MAX_MESSAGE = 300


def httpx_client(timeout: float) -> httpx.Client:
    """An httpx client that never follows redirects, ignores proxy variables and is guarded."""
    return httpx.Client(
        transport=ssrf.guarded_transport(httpx),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def httpx2_client(timeout: float) -> httpx2.Client:
    """The same guarded client for the official SDKs, which are built on httpx2."""
    return httpx2.Client(
        transport=ssrf.guarded_transport(httpx2),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def httpx_async_client(timeout: float | httpx.Timeout) -> httpx.AsyncClient:
    """The async guarded httpx client (no redirects, no proxy variables)."""
    return httpx.AsyncClient(
        transport=ssrf.guarded_async_transport(httpx),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def httpx2_async_client(timeout: float | httpx2.Timeout) -> httpx2.AsyncClient:
    """The async guarded client for the official SDKs (`openai.AsyncOpenAI(http_client=...)`)."""
    return httpx2.AsyncClient(
        transport=ssrf.guarded_async_transport(httpx2),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove secret values from provider text before it reaches a response or a log."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text[:MAX_MESSAGE]


def _redirect_result(response: Any, latency: int) -> VerifyResult:
    location = response.headers.get("location", "")
    target = urljoin(str(response.request.url), location) if location else ""
    try:
        if target:
            ssrf.check_url(target)
    except BlockedAddress:
        return VerifyResult(
            False, latency, "blocked_address", "The provider redirected to a refused address."
        )
    return VerifyResult(
        False,
        latency,
        "provider_error",
        f"The provider answered a redirect ({response.status_code}); redirects are not followed.",
    )


def classify_response(
    response: Any,
    latency: int,
    secrets: Iterable[str],
    *,
    missing_model_statuses: tuple[int, ...] = (404,),
) -> VerifyResult:
    """Map an HTTP error response onto a verify error code."""
    status = response.status_code
    if 300 <= status < 400:
        return _redirect_result(response, latency)
    try:
        body = response.text
    except Exception:  # noqa: BLE001  # an unreadable body is just an empty message
        body = ""
    detail = scrub(body, secrets)
    if status in (401, 403) or (status == 400 and "API_KEY_INVALID" in body):
        return VerifyResult(
            False, latency, "invalid_key", f"The provider refused the key ({status})."
        )
    if status in missing_model_statuses:
        return VerifyResult(
            False, latency, "model_not_found", f"The provider does not know the model ({status})."
        )
    return VerifyResult(False, latency, "provider_error", f"HTTP {status}: {detail}")


def run_verify(call: Callable[[], Any], secrets: Iterable[str]) -> VerifyResult:
    """Time one provider call and turn any failure into a VerifyResult; never raises."""
    secrets = [s for s in secrets if s]
    started = time.monotonic()
    try:
        call()
    except Exception as exc:  # noqa: BLE001  # every failure becomes a result, by contract
        latency = int((time.monotonic() - started) * 1000)
        return classify_exception(exc, latency, secrets)
    return VerifyResult(True, int((time.monotonic() - started) * 1000))


def classify_exception(exc: Exception, latency: int, secrets: Iterable[str]) -> VerifyResult:
    for link in _chain(exc):
        if isinstance(link, BlockedAddress):
            return VerifyResult(False, latency, "blocked_address", link.message)
    for link in _chain(exc):
        response = getattr(link, "response", None)
        if response is not None and hasattr(response, "status_code"):
            return classify_response(response, latency, secrets)
    for link in _chain(exc):
        if isinstance(link, httpx.TransportError | httpx2.TransportError | OSError | TimeoutError):
            kind = "timed out" if "timeout" in type(link).__name__.lower() else "failed"
            return VerifyResult(False, latency, "unreachable", f"Connection {kind}.")
        if type(link).__name__ in ("APIConnectionError", "APITimeoutError"):
            return VerifyResult(False, latency, "unreachable", "Connection failed or timed out.")
    return VerifyResult(
        False, latency, "provider_error", scrub(f"{type(exc).__name__}: {exc}", secrets)
    )
