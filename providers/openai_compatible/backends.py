"""OpenAI-compatible backends (OpenAI, Ollama, vLLM, LM Studio, OpenRouter, ...) via `openai`.

Parameters, verification, speech and transcription here; the chat client in chat.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from providers.audio import AudioInput
from providers.base import (
    ChatBackend,
    Parameter,
    SpeechBackend,
    TranscriptionBackend,
    VerifyResult,
)
from providers.errors import failure_for_exception
from providers.http import httpx2_client, run_verify
from providers.openai_compatible.chat import OpenAICompatibleClient
from providers.registry import registry

if TYPE_CHECKING:
    import openai  # imported where used: the SDK costs seconds at every start-up

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: `response_format="pcm"` of /audio/speech: 16-bit little-endian mono at this rate.
OPENAI_PCM_RATE = 24000
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
)  # fmt: skip


def openai_client(values: dict[str, Any], timeout: float) -> openai.OpenAI:
    """An official client on the guarded transport, with no retries and no redirects."""
    import openai

    return openai.OpenAI(
        # Local servers (Ollama) need no key, but the client insists on one.
        api_key=values.get("api_key") or "unused",
        base_url=values.get("base_url") or DEFAULT_BASE_URL,
        timeout=timeout,
        max_retries=0,
        http_client=httpx2_client(timeout),
    )


_COMMON = (
    Parameter("base_url", "url", default=DEFAULT_BASE_URL, description="API root, ending in /v1."),
    Parameter("api_key", "string", secret=True, description="Bearer key (optional for local)."),
)


class OpenAICompatibleLLM(ChatBackend):
    kind = "llm"
    id = "openai_compatible"
    label = "OpenAI-compatible chat completions"
    client_class = OpenAICompatibleClient
    parameters: ClassVar[tuple[Parameter, ...]] = (
        *_COMMON,
        Parameter("model", "string", required=True, description="Model name, e.g. gpt-4o-mini."),
        Parameter("temperature", "number", description="Sampling temperature."),
    )

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        def call() -> None:
            with openai_client(values, timeout) as client:
                client.chat.completions.create(
                    model=values["model"],
                    messages=[{"role": "user", "content": "ping"}],
                    max_tokens=1,
                )

        return run_verify(call, [values.get("api_key") or ""])


class _ModelLookupMixin:
    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        def call() -> None:
            with openai_client(values, timeout) as client:
                client.models.retrieve(values["model"])

        return run_verify(call, [values.get("api_key") or ""])


class OpenAICompatibleTTS(_ModelLookupMixin, SpeechBackend):
    kind = "tts"
    id = "openai_compatible"
    label = "OpenAI-compatible speech"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        *_COMMON,
        Parameter("model", "string", default="gpt-4o-mini-tts", required=True),
        Parameter("voice", "string", default="alloy"),
    )

    def synthesize(
        self, values: dict[str, Any], text: str, *, timeout: float
    ) -> Iterator[tuple[int, bytes]]:
        """POST /audio/speech for raw PCM and yield it as the provider sends it."""
        try:
            with (
                openai_client(values, timeout) as client,
                client.audio.speech.with_streaming_response.create(
                    model=values["model"],
                    voice=values.get("voice") or "alloy",
                    input=text,
                    response_format="pcm",
                ) as response,
            ):
                for chunk in response.iter_bytes(8192):
                    yield OPENAI_PCM_RATE, chunk
        except Exception as exc:
            raise failure_for_exception(exc, self.label) from None

    def voices(self, values: dict[str, Any], *, timeout: float) -> list[dict[str, str]]:
        """OpenAI's fixed voice list (the API has no endpoint that lists them)."""
        return [{"id": v, "name": v.title(), "language": "", "gender": ""} for v in OPENAI_VOICES]


class OpenAICompatibleSTT(_ModelLookupMixin, TranscriptionBackend):
    kind = "stt"
    id = "openai_compatible"
    label = "OpenAI-compatible transcription"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        *_COMMON,
        Parameter("model", "string", default="whisper-1", required=True),
        Parameter("language", "string", description="ISO-639-1 hint, e.g. en."),
    )

    def transcribe(
        self,
        values: dict[str, Any],
        *,
        audio: AudioInput,
        language: str = "",
        phrases: list[str] | None = None,
        timeout: float,
    ) -> str:
        """POST /audio/transcriptions (multipart); phrases become the vocabulary prompt."""
        extra: dict[str, Any] = {}
        language = language or values.get("language") or ""
        if language:
            extra["language"] = language
        if phrases:
            extra["prompt"] = ", ".join(phrases)
        try:
            with openai_client(values, timeout) as client:
                result = client.audio.transcriptions.create(
                    model=values["model"],
                    file=(f"audio.{audio.format}", audio.data, audio.mime),
                    response_format="json",
                    **extra,
                )
        except Exception as exc:
            raise failure_for_exception(exc, self.label) from None
        return str(getattr(result, "text", "") or "").strip()


registry.register(OpenAICompatibleLLM())
registry.register(OpenAICompatibleTTS())
registry.register(OpenAICompatibleSTT())
