"""HTTP pieces shared by every endpoint that speaks or transcribes (the preferences voice
endpoints and the sessions message audio): throttles, the documented provider errors, the
shared query and field serializers, and the answer for audio under way.

They hold no rules: the voice services live in providers.services and preferences.services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from cortex.api.schema import error_response

PROVIDER_ERRORS = {
    429: error_response(
        "Throttled (`throttled`) or the provider is rate limiting (`rate_limited`)."
    ),
    502: error_response("The provider refused the key (`invalid_key`) or the request."),
    503: error_response("The provider is unavailable (`provider_unavailable`)."),
    504: error_response("The provider did not answer in time (`provider_timeout`)."),
}

PROVIDER_HELP = "One-off provider for this call; must be one your groups allow."


class _LiveRateThrottle(UserRateThrottle):
    """Per-user rate from settings at request time (tests and operators may change it)."""

    def get_rate(self) -> str | None:
        # The stubs type the rates as numbers; DRF's rates are strings such as "30/min".
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # type: ignore[arg-type, return-value]


class SpeechRateThrottle(_LiveRateThrottle):
    scope = "speech"


class TranscribeRateThrottle(_LiveRateThrottle):
    scope = "transcribe"


class SpeechQuery(serializers.Serializer):
    stream = serializers.BooleanField(
        required=False, default=False, help_text="Send audio in chunks as it is produced."
    )
    as_wav = serializers.BooleanField(
        required=False,
        default=False,
        help_text="With stream: a WAV stream instead of raw 16-bit PCM. Whole answers are WAV.",
    )
    provider_name = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text=PROVIDER_HELP
    )


class PhrasesField(serializers.ListField):
    """Phrases as repeated form fields, or one field with phrases separated by commas."""

    child = serializers.CharField(max_length=200)

    def get_value(self, dictionary):  # type: ignore[no-untyped-def]
        value = super().get_value(dictionary)
        if isinstance(value, list) and len(value) == 1 and "," in value[0]:
            return [p.strip() for p in value[0].split(",") if p.strip()]
        return value


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


def audio_response(
    request: Request, *, content_type: str, headers: dict[str, str], content: Any
) -> HttpResponse | StreamingHttpResponse:
    """Whole bytes as one response; an iterator of chunks streamed as it is produced."""
    if isinstance(content, bytes):
        return HttpResponse(content, content_type=content_type, headers=headers)
    if isinstance(request._request, ASGIRequest):  # noqa: SLF001  # DRF wraps the request
        content = _in_threads(content)
    return StreamingHttpResponse(content, content_type=content_type, headers=headers)
