"""Shared plumbing for network backends: guarded clients, and verification's view of the one
error classification in providers.errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urljoin

import httpx
import httpx2

from providers import ssrf
from providers.base import VerifyResult
from providers.errors import (
    BlockedAddress,
    ProviderCallFailed,
    exception_chain,
    failure_for_exception,
    failure_for_status,
)

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


def _body(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:  # noqa: BLE001  # an unreadable body is just an empty message
        return ""


def classify_response(response: Any, latency: int, secrets: Iterable[str]) -> VerifyResult:
    """Verification's view of an HTTP error answer, classified by providers.errors."""
    status = response.status_code
    if 300 <= status < 400:
        return _redirect_result(response, latency)
    body = _body(response)
    failure = failure_for_status("The provider", status, body=body, headers=response.headers)
    return _status_result(failure, status, latency, scrub(body, secrets))


def _status_result(
    failure: ProviderCallFailed, status: int, latency: int, detail: str
) -> VerifyResult:
    """Verify's codes for an answered call: invalid_key, model_not_found or provider_error."""
    if failure.code == "invalid_key":
        return VerifyResult(
            False, latency, "invalid_key", f"The provider refused the key ({status})."
        )
    if status == 404:
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
    """Verification's view of a failed call, classified by providers.errors.

    Verify has its own, older vocabulary (its codes are API): a refused address is
    blocked_address, no answer is unreachable, an answer is judged by classify_response.
    """
    failure = failure_for_exception(exc, "The provider")
    if isinstance(failure, BlockedAddress):
        return VerifyResult(False, latency, "blocked_address", failure.message)
    if isinstance(failure, ProviderCallFailed):
        answered = [getattr(link, "response", None) for link in exception_chain(exc)]
        response = next((r for r in answered if hasattr(r, "status_code")), None)
        if failure.status is not None and response is not None:
            return classify_response(response, latency, secrets)
        if failure.reach:
            kind = "timed out" if failure.reach == "timeout" else "failed"
            return VerifyResult(False, latency, "unreachable", f"Connection {kind}.")
    return VerifyResult(
        False, latency, "provider_error", scrub(f"{type(exc).__name__}: {exc}", secrets)
    )
