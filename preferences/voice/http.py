"""The HTTP side of voice shared by the preferences and sessions APIs: throttles, the
documented provider errors and the streamed speech response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from cortex.api.schema import error_response
from preferences.voice import synthesis
from preferences.voice.audio import wav_header

#: Room for the multipart envelope around the file when judging Content-Length up front.
MULTIPART_SLACK = 64 * 1024

PROVIDER_ERRORS = {
    429: error_response(
        "Throttled (`throttled`) or the provider is rate limiting (`rate_limited`)."
    ),
    502: error_response("The provider refused the key (`invalid_key`) or the request."),
    503: error_response("The provider is unavailable (`provider_unavailable`)."),
    504: error_response("The provider did not answer in time (`provider_timeout`)."),
}


class _LiveRateThrottle(UserRateThrottle):
    """Per-user rate from settings at request time (tests and operators may change it)."""

    def get_rate(self) -> str | None:
        # The stubs type the rates as numbers; DRF's rates are strings such as "30/min".
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # type: ignore[arg-type, return-value]


class SpeechRateThrottle(_LiveRateThrottle):
    scope = "speech"


class TranscribeRateThrottle(_LiveRateThrottle):
    scope = "transcribe"


async def _in_threads(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Serve a blocking producer under ASGI one chunk at a time (Django would buffer it all)."""
    step = sync_to_async(next, thread_sensitive=False)
    try:
        # The stubs keep only next()'s one-argument form; next(iterator, None) ends with None.
        while (chunk := await step(chunks, None)) is not None:  # type: ignore[call-arg]
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=False)()


def _with_header(header: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield header
    yield from chunks


def speech_response(
    request: Request, speech: synthesis.Speech, *, stream: bool, as_wav: bool
) -> HttpResponse | StreamingHttpResponse:
    """The HTTP answer for speech under way: one WAV, or chunks (raw PCM or an open WAV)."""
    rate = speech.sample_rate
    headers = {
        "X-Sample-Rate": str(rate),
        "X-Voice-Provider": speech.provider,
        "Cache-Control": "no-store",
    }
    if not stream:
        try:
            audio = synthesis.speech_audio(speech=speech)
        finally:
            speech.close()
        return HttpResponse(audio, content_type="audio/wav", headers=headers)
    chunks = synthesis.speech_guarded(speech=speech)
    if as_wav:
        chunks = _with_header(wav_header(rate), chunks)
        content_type = "audio/wav"
    else:
        content_type = f"audio/L16;rate={rate};channels=1"
        headers["X-Audio-Encoding"] = "pcm_s16le"
    content: Any = chunks
    if isinstance(request._request, ASGIRequest):  # noqa: SLF001  # DRF wraps the request
        content = _in_threads(chunks)
    return StreamingHttpResponse(content, content_type=content_type, headers=headers)
