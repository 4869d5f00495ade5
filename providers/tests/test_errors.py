"""The one mapping of provider failures onto codes, and its three presentations (chat turns,
voice endpoints, verification) agreeing with it."""

from __future__ import annotations

import httpx
import httpx2
import openai
import pytest

from providers.errors import (
    BlockedAddress,
    ProviderCallFailed,
    failure_for_exception,
    failure_for_status,
)
from providers.http import classify_exception
from providers.llm import LLMError

#: status -> (voice/verify-side code, chat code); they differ only where chat reads the body
#: for context overflow and keeps 408/504 retryable.
STATUS_CODES = {
    400: ("provider_rejected", "provider_rejected"),
    401: ("invalid_key", "invalid_key"),
    403: ("invalid_key", "invalid_key"),
    404: ("provider_rejected", "provider_rejected"),
    408: ("provider_timeout", "provider_rejected"),
    413: ("provider_rejected", "context_too_long"),
    429: ("rate_limited", "rate_limited"),
    500: ("provider_unavailable", "provider_unavailable"),
    503: ("provider_unavailable", "provider_unavailable"),
    504: ("provider_timeout", "provider_unavailable"),
}


def _status_error(status: int, body: str = "", headers: dict[str, str] | None = None) -> Exception:
    request = httpx.Request("POST", "https://provider.example/v1/x")
    response = httpx.Response(status, request=request, text=body, headers=headers or {})
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        return exc
    raise AssertionError("not an error status")


@pytest.mark.parametrize("status", sorted(STATUS_CODES))
def test_status_codes_for_every_caller(status):
    voice, chat = STATUS_CODES[status]
    assert failure_for_status("P", status).code == voice
    assert failure_for_status("P", status, chat=True).code == chat
    exc = _status_error(status)
    assert failure_for_exception(exc, "P").code == voice
    assert LLMError.from_exception(exc, "P").code == chat


def test_context_overflow_is_read_from_the_body_for_chat_only():
    body = '{"error": {"code": "context_length_exceeded"}}'
    assert failure_for_status("P", 400, body=body, chat=True).code == "context_too_long"
    assert failure_for_status("P", 400, body=body).code == "provider_rejected"


def test_gemini_invalid_key_400_is_invalid_key_outside_chat():
    body = '{"error": {"status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}}'
    assert failure_for_status("P", 400, body=body).code == "invalid_key"
    verify = classify_exception(_status_error(400, body), 1, [])
    assert (verify.error_code, verify.message) == (
        "invalid_key",
        "The provider refused the key (400).",
    )


def test_retry_after_reaches_the_turn_and_only_rate_limits_reach_http():
    limited = failure_for_status("P", 429, headers={"Retry-After": "7"})
    down = failure_for_status("P", 503, headers={"Retry-After": "3"})
    assert (limited.retry_after, limited.retry_hint) == (7.0, 7.0)
    assert (down.retry_after, down.retry_hint) == (None, 3.0)
    assert LLMError.from_error(down, "P").retry_after == 3.0


def test_messages_never_echo_the_body():
    secret = "sk-live-123456"
    error = failure_for_exception(_status_error(500, f"bad key {secret}"), "P")
    assert secret not in error.message
    assert LLMError.from_exception(_status_error(500, secret), "P").message.count(secret) == 0


def test_the_guards_refusal_anywhere_in_the_chain_wins():
    try:
        try:
            raise BlockedAddress("Host 'x' resolves to a refused address (127.0.0.1).")
        except BlockedAddress as blocked:
            raise httpx2.ConnectError("wrapped") from blocked
    except httpx2.ConnectError as exc:
        wrapped = exc
    assert isinstance(failure_for_exception(wrapped, "P"), BlockedAddress)
    llm = LLMError.from_exception(wrapped, "P")
    assert (llm.code, llm.retryable) == ("blocked_address", False)
    assert classify_exception(wrapped, 1, []).error_code == "blocked_address"


@pytest.mark.parametrize(
    ("exc", "code", "reach", "verify"),
    [
        (httpx.ConnectError("refused"), "provider_unavailable", "connect", "unreachable"),
        (httpx2.ReadTimeout("slow"), "provider_timeout", "timeout", "unreachable"),
        (
            openai.APIConnectionError(request=httpx2.Request("GET", "https://p.example/")),
            "provider_unavailable",
            "connect",
            "unreachable",
        ),
        (ConnectionRefusedError(), "provider_unavailable", "connect", "unreachable"),
        (ValueError("odd"), "provider_unavailable", "", "provider_error"),
    ],
)
def test_failures_without_an_answer(exc, code, reach, verify):
    failure = failure_for_exception(exc, "P")
    assert isinstance(failure, ProviderCallFailed)
    assert (failure.code, failure.reach, failure.status) == (code, reach, None)
    assert classify_exception(exc, 1, []).error_code == verify
    assert LLMError.from_exception(exc, "P").code == code


def test_an_unusable_chat_answer_keeps_its_own_message():
    error = LLMError.from_exception(ValueError("x"), "P", fallback="sent an unusable answer")
    assert (error.code, error.message) == ("provider_unavailable", "P sent an unusable answer.")
