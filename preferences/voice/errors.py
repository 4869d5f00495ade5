"""Errors of the voice endpoints; codes are API and match the chat turns' provider codes.

`http_status` (see cortex.errors.CortexError) is set where the category's default (400 for
validation, 503 for unavailable) would be less precise.
"""

from __future__ import annotations

from typing import ClassVar

from cortex import errors


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
    """A provider call failed; `code` is one of the chat turns' provider error codes."""

    http_status: ClassVar[int | None] = 503
    code = "provider_unavailable"
    default_message = "The provider could not be reached."


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


def for_status(provider: str, status: int, retry_after: float | None = None) -> ProviderCallFailed:
    """Map a provider's HTTP status onto an error; the body is never echoed (it may hold keys)."""
    error: ProviderCallFailed
    if status in (401, 403):
        error = InvalidKey(f"{provider} refused the API key (HTTP {status}).")
    elif status == 429:
        error = RateLimited(f"{provider} is rate limiting requests (HTTP 429).")
        error.retry_after = retry_after
    elif status in (408, 504):
        error = ProviderTimeout(f"{provider} did not answer in time (HTTP {status}).")
    elif status >= 500:
        error = ProviderUnavailable(f"{provider} is unavailable (HTTP {status}).")
    else:
        error = ProviderRejected(f"{provider} rejected the request (HTTP {status}).")
    return error


def provider_failure(exc: BaseException, provider: str) -> errors.CortexError:
    """Turn an exception from a provider call into a voice error; messages never hold secrets."""
    import httpx
    import httpx2
    import openai

    from preferences.errors import BlockedAddress

    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, errors.CortexError):
            return link
        if isinstance(link, openai.APITimeoutError | httpx.TimeoutException | TimeoutError):
            return ProviderTimeout(f"{provider} did not answer in time.")
        if isinstance(link, httpx2.TimeoutException):
            return ProviderTimeout(f"{provider} did not answer in time.")
        response = getattr(link, "response", None)
        if response is not None and hasattr(response, "status_code"):
            retry = response.headers.get("retry-after") if response.headers else None
            try:
                seconds = float(retry) if retry else None
            except ValueError:
                seconds = None
            return for_status(provider, response.status_code, seconds)
        if isinstance(link, BlockedAddress):
            return link
        link = link.__cause__ or link.__context__
    return ProviderUnavailable(f"{provider} could not be reached.")
