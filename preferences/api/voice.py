"""Voice endpoints: speak text, list voices, transcribe an upload (routes at the bottom)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_signed_in
from cortex.api.schema import error_response
from cortex.api.viewsets import CortexViewSet
from cortex.api.voice import (
    PROVIDER_ERRORS,
    SpeechRateThrottle,
    TranscribeRateThrottle,
    audio_response,
)
from preferences.api import voice_serializers as s
from preferences.services import voice
from providers import limits
from providers.services import speech, transcription

_SAMPLE_RATE_HEADER = OpenApiParameter(
    "X-Sample-Rate",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=True,
    description="Samples per second of the audio (16-bit, mono).",
)


class _VoiceViewSet(CortexViewSet):
    created_actions = frozenset()


class SpeechViewSet(_VoiceViewSet):
    """Text to speech with the caller's tts provider; a list of a provider's voices."""

    input_serializers: ClassVar[dict[str, Any]] = {"speak": s.SpeechInput}
    output_serializer = s.VoicesOutput
    throttle_classes = [SpeechRateThrottle]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_throttles(self) -> list[Any]:
        return super().get_throttles() if self.action == "speak" else []

    @extend_schema(
        operation_id="speech_create",
        summary="Speak text with your tts provider",
        description=(
            "Whole answers are WAV. With `stream=true` audio is sent in chunks as it is "
            "produced: raw 16-bit little-endian mono PCM (`audio/L16;rate=N;channels=1`), or a "
            "WAV stream of unknown length with `as_wav=true`. Errors of the first sentence are "
            "answered as errors; a failure later ends the stream early."
        ),
        parameters=[s.SpeechQuery, _SAMPLE_RATE_HEADER],
        request=s.SpeechInput,
        responses={
            (200, "audio/wav"): OpenApiResponse(
                OpenApiTypes.BINARY, description="WAV, 16-bit mono."
            ),
            (200, "audio/L16"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="Streamed raw PCM; the content type carries rate and channels.",
            ),
            **PROVIDER_ERRORS,
        },
    )
    def speak(self, request: Request) -> HttpResponse | StreamingHttpResponse:
        query = self.validated_query(s.SpeechQuery, request)
        data = self.validated_input(request)
        started = voice.speech_synthesize(
            user=user_signed_in(user=request.user),
            text=data["text"],
            voice=data.get("voice") or "",
            provider_name=query.get("provider_name") or "",
        )
        body = speech.speech_body(speech=started, stream=query["stream"], as_wav=query["as_wav"])
        return audio_response(
            request, content_type=body.content_type, headers=body.headers, content=body.content
        )

    @extend_schema(
        operation_id="speech_voices",
        summary="Voices of a tts provider",
        parameters=[s.VoicesQuery],
        responses={200: s.VoicesOutput, **PROVIDER_ERRORS},
    )
    def voices(self, request: Request) -> Response:
        query = self.validated_query(s.VoicesQuery, request)
        provider, voices = voice.voices_list(
            user=user_signed_in(user=request.user), provider=query.get("provider") or ""
        )
        return self.render({"provider": provider, "voices": voices})


class TranscriptionViewSet(_VoiceViewSet):
    """Speech to text of an uploaded recording with the caller's stt provider."""

    input_serializers: ClassVar[dict[str, Any]] = {"transcribe": s.TranscribeInput}
    output_serializer = s.TranscriptOutput
    throttle_classes = [TranscribeRateThrottle]
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="stt_transcribe",
        summary="Transcribe a recording with your stt provider",
        description=(
            "Multipart `file`: WAV, MP3, OGG (Vorbis, Opus) or WebM (Opus), recognised by its "
            "bytes. Every upload is decoded on the hub (16 kHz mono for the local pocketsphinx), "
            "which enforces the duration limit; a damaged file is refused with "
            "`undecodable_audio` (400)."
        ),
        request=s.TranscribeInput,
        responses={
            200: s.TranscriptOutput,
            413: error_response("Too large (`file_too_large`) or too long (`audio_too_long`)."),
            400: error_response("Empty (`empty_file`) or damaged (`undecodable_audio`) audio."),
            415: error_response("Not an accepted format (`unsupported_media_type`)."),
            **PROVIDER_ERRORS,
        },
    )
    def transcribe(self, request: Request) -> Response:
        transcription.upload_length_check(int(request.META.get("CONTENT_LENGTH") or 0))
        data = self.validated_input(request)
        upload = data["file"]
        transcription.check_upload_size(upload.size or 0)
        result = voice.transcription_run(
            user=user_signed_in(user=request.user),
            data=upload.read(limits.max_upload_bytes() + 1),
            provider_name=data.get("provider_name") or "",
            language=data.get("language") or "",
            phrases=data.get("phrases") or None,
        )
        return self.render(result)


urlpatterns: list[URLPattern] = [
    path("speech/", SpeechViewSet.as_view({"post": "speak"}), name="speech"),
    path("speech/voices/", SpeechViewSet.as_view({"get": "voices"}), name="speech-voices"),
    path(
        "stt/transcribe/",
        TranscriptionViewSet.as_view({"post": "transcribe"}),
        name="stt-transcribe",
    ),
]
