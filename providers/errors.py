"""Errors of provider calls, and the one mapping of provider HTTP failures onto error codes.

Codes are API and shared by chat turns, the voice endpoints and verification. Every provider
failure (an HTTP status, a timeout, a refused connect) is classified here, once, by
`failure_for_status` and `failure_for_exception`; the chat client (`providers.llm.LLMError`)
and verification (`providers.http.run_verify`) only present that classification.
`http_status` (see cortex.errors.CortexError) is set where the category's default (400 for
validation, 503 for unavailable) would be less precise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from django.utils import timezone

from cortex import errors

#: Provider error bodies that mean "the conversation does not fit the model" (chat only).
CONTEXT_HINTS = ("context_length", "context length", "too many tokens", "prompt is too long")


class BlockedAddress(errors.ValidationFailed):
    """The SSRF guard refused a provider address (see providers.ssrf)."""

    code = "blocked_address"
    default_message = "The address is not allowed for provider calls."


class UnknownProvider(errors.ValidationFailed):
    code = "unknown_provider"
    default_message = "Unknown provider."


class VoiceInputError(errors.ValidationFailed):
    """Bad input for a voice call; answered with `http_status`."""

    http_status: ClassVar[int | None] = 400


class TextTooLong(VoiceInputError):
    code = "text_too_long"
    default_message = "The text is too long to speak."


class EmptyFile(VoiceInputError):
    code = "empty_file"
    default_message = "The uploaded file is empty."


class FileTooLarge(VoiceInputError):
    code = "file_too_large"
    default_message = "The uploaded file is too large."
    http_status = 413


class AudioTooLong(VoiceInputError):
    code = "audio_too_long"
    default_message = "The audio is too long to transcribe."
    http_status = 413


class UnsupportedMediaType(VoiceInputError):
    code = "unsupported_media_type"
    default_message = "Unsupported audio format; send WAV, MP3, OGG or WebM."
    http_status = 415


class UndecodableAudio(VoiceInputError):
    code = "undecodable_audio"
    default_message = "The audio could not be decoded; the file may be damaged."


class DecoderUnavailable(VoiceInputError):
    code = "decoder_unavailable"
    default_message = "This audio format cannot be decoded on this hub; send WAV."
    http_status = 415


class UnknownVoice(VoiceInputError):
    code = "unknown_voice"
    default_message = "The provider does not know this voice."


class ProviderCallFailed(errors.Unavailable):
    """A provider call failed; `code` is one of the provider error codes.

    `status` is the provider's HTTP status when it answered one; `retry_hint` the seconds its
    Retry-After asked for (used by the chat client's retries). `retry_after`, which the HTTP
    handler sends on, is set only when the provider rate limits.
    """

    http_status: ClassVar[int | None] = 503
    code = "provider_unavailable"
    default_message = "The provider could not be reached."
    status: int | None = None
    retry_hint: float | None = None
    #: How the call failed without an answer: "timeout", "connect", or "" (it answered, or
    #: something unknown went wrong). Verification reports the first two as `unreachable`.
    reach: str = ""


class ProviderUnavailable(ProviderCallFailed):
    code = "provider_unavailable"


class ProviderTimeout(ProviderCallFailed):
    code = "provider_timeout"
    default_message = "The provider did not answer in time."
    http_status = 504


class InvalidKey(ProviderCallFailed):
    code = "invalid_key"
    default_message = "The provider refused the API key."
    http_status = 502


class RateLimited(ProviderCallFailed):
    code = "rate_limited"
    default_message = "The provider is rate limiting requests."
    http_status = 429


class ProviderRejected(ProviderCallFailed):
    code = "provider_rejected"
    default_message = "The provider rejected the request."
    http_status = 502


class ContextTooLong(ProviderCallFailed):
    code = "context_too_long"
    default_message = "The conversation is too long for the model."
    http_status = 502


def retry_after_seconds(headers: Any | None) -> float | None:
    """`Retry-After` as seconds (delta or HTTP date), or None."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def failure_for_status(
    provider: str, status: int, *, body: str = "", headers: Any | None = None, chat: bool = False
) -> ProviderCallFailed:
    """Map a provider's HTTP error status onto an error; the body is never echoed (keys).

    Chat calls read the body only to spot context overflow (413 or a known hint), and keep
    408/504 as retryable rejections/unavailability; other calls treat 408/504 as timeouts.
    """
    error: ProviderCallFailed
    if status in (401, 403) or (status == 400 and "API_KEY_INVALID" in (body or "") and not chat):
        error = InvalidKey(f"{provider} refused the API key (HTTP {status}).")
    elif status == 429:
        error = RateLimited(f"{provider} is rate limiting requests (HTTP 429).")
    elif chat and (status == 413 or any(h in (body or "").lower() for h in CONTEXT_HINTS)):
        error = ContextTooLong(
            f"The conversation is too long for the {provider} model (HTTP {status})."
        )
    elif not chat and status in (408, 504):
        error = ProviderTimeout(f"{provider} did not answer in time (HTTP {status}).")
    elif status >= 500:
        error = ProviderUnavailable(f"{provider} is unavailable (HTTP {status}).")
    else:
        error = ProviderRejected(f"{provider} rejected the request (HTTP {status}).")
    error.status = status
    error.retry_hint = retry_after_seconds(headers)
    if isinstance(error, RateLimited):
        error.retry_after = error.retry_hint
    return error


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes/contexts, each once."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _is_timeout(link: BaseException) -> bool:
    import httpx
    import httpx2
    import openai

    timeouts = (openai.APITimeoutError, httpx.TimeoutException, httpx2.TimeoutException)
    return isinstance(link, (*timeouts, TimeoutError))


def _is_connect_failure(link: BaseException) -> bool:
    import httpx
    import httpx2
    import openai

    return isinstance(
        link, httpx.TransportError | httpx2.TransportError | openai.APIConnectionError | OSError
    )


def _reached(error: ProviderCallFailed, reach: str) -> ProviderCallFailed:
    error.reach = reach
    return error


def _status_body(link: BaseException) -> str:
    """The error body an SDK already parsed (never read from a half-streamed response)."""
    body = getattr(link, "body", None)
    if body is None:
        return ""
    try:
        return body if isinstance(body, str) else json.dumps(body)
    except (TypeError, ValueError):
        return ""


def failure_for_exception(
    exc: BaseException, provider: str, *, chat: bool = False, fallback: str = "could not be reached"
) -> errors.CortexError:
    """Turn an exception from a provider call into a domain error; messages hold no secrets.

    Our own errors anywhere in the chain win (the SSRF guard's BlockedAddress, a voice input
    error); then a timeout or an HTTP status the provider answered; then a failed connect
    ("could not be reached"); anything else is `provider_unavailable` with `fallback`.
    """
    for link in exception_chain(exc):
        if isinstance(link, errors.CortexError):
            return link
    for link in exception_chain(exc):
        if _is_timeout(link):
            return _reached(ProviderTimeout(f"{provider} did not answer in time."), "timeout")
        response = getattr(link, "response", None)
        if response is not None and hasattr(response, "status_code"):
            return failure_for_status(
                provider,
                response.status_code,
                body=_status_body(link),
                headers=response.headers,
                chat=chat,
            )
    if any(_is_connect_failure(link) for link in exception_chain(exc)):
        return _reached(ProviderUnavailable(f"{provider} could not be reached."), "connect")
    return ProviderUnavailable(f"{provider} {fallback}.")
