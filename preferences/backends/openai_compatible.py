"""OpenAI-compatible backends (OpenAI, Ollama, vLLM, LM Studio, OpenRouter, ...) via `openai`."""

from __future__ import annotations

from typing import Any, ClassVar

import openai

from preferences.backends.base import Backend, Parameter, VerifyResult
from preferences.backends.http import httpx2_client, run_verify
from preferences.backends.registry import registry

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def openai_client(values: dict[str, Any], timeout: float) -> openai.OpenAI:
    """An official client on the guarded transport, with no retries and no redirects."""
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


class OpenAICompatibleLLM(Backend):
    kind = "llm"
    id = "openai_compatible"
    label = "OpenAI-compatible chat completions"
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


class OpenAICompatibleTTS(_ModelLookupMixin, Backend):
    kind = "tts"
    id = "openai_compatible"
    label = "OpenAI-compatible speech"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        *_COMMON,
        Parameter("model", "string", default="gpt-4o-mini-tts", required=True),
        Parameter("voice", "string", default="alloy"),
    )


class OpenAICompatibleSTT(_ModelLookupMixin, Backend):
    kind = "stt"
    id = "openai_compatible"
    label = "OpenAI-compatible transcription"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        *_COMMON,
        Parameter("model", "string", default="whisper-1", required=True),
        Parameter("language", "string", description="ISO-639-1 hint, e.g. en."),
    )


registry.register(OpenAICompatibleLLM())
registry.register(OpenAICompatibleTTS())
registry.register(OpenAICompatibleSTT())
