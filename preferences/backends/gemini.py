"""Google Gemini backends over the REST API (generateContent, models.get) via httpx.

The key travels in the `x-goog-api-key` header, never in the URL, so it cannot end up in
access logs.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from preferences.backends.base import Backend, Parameter, VerifyResult
from preferences.backends.http import classify_response, httpx_client, run_verify
from preferences.backends.registry import registry

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"


def model_path(base_url: str, model: str) -> str:
    """`{base}/v1beta/models/{model}`, tolerating a `models/` prefix on the name."""
    name = model.removeprefix("models/")
    return f"{base_url.rstrip('/')}/v1beta/models/{quote(name, safe='.-_')}"


class _GeminiBackend(Backend):
    def _call(self, values: dict[str, Any], timeout: float, *, generate: bool) -> VerifyResult:
        key = values.get("api_key") or ""
        url = model_path(values.get("base_url") or DEFAULT_BASE_URL, values["model"])
        outcome: dict[str, VerifyResult] = {}

        def call() -> None:
            with httpx_client(timeout) as client:
                headers = {"x-goog-api-key": key}
                if generate:
                    response = client.post(
                        f"{url}:generateContent",
                        headers=headers,
                        json={
                            "contents": [{"role": "user", "parts": [{"text": "ping"}]}],
                            "generationConfig": {"maxOutputTokens": 1},
                        },
                    )
                else:
                    response = client.get(url, headers=headers)
                if response.status_code >= 300:
                    outcome["result"] = classify_response(response, 0, [key])

        result = run_verify(call, [key])
        if "result" in outcome:
            failed = outcome["result"]
            return VerifyResult(False, result.latency_ms, failed.error_code, failed.message)
        return result


_COMMON = (
    Parameter("base_url", "url", default=DEFAULT_BASE_URL),
    Parameter("api_key", "string", secret=True, required=True),
)


class GeminiLLM(_GeminiBackend):
    kind = "llm"
    id = "gemini"
    label = "Google Gemini"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        *_COMMON,
        Parameter("model", "string", required=True, description="e.g. gemini-2.5-flash."),
        Parameter("temperature", "number"),
    )

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        return self._call(values, timeout, generate=True)


class GeminiTTS(_GeminiBackend):
    kind = "tts"
    id = "gemini"
    label = "Google Gemini speech"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        *_COMMON,
        Parameter("model", "string", default="gemini-2.5-flash-preview-tts", required=True),
        Parameter("voice", "string", default="Kore"),
    )

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        return self._call(values, timeout, generate=False)


class GeminiSTT(_GeminiBackend):
    kind = "stt"
    id = "gemini"
    label = "Google Gemini transcription"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        *_COMMON,
        Parameter("model", "string", default="gemini-2.5-flash", required=True),
        Parameter("language", "string"),
    )

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        return self._call(values, timeout, generate=False)


registry.register(GeminiLLM())
registry.register(GeminiTTS())
registry.register(GeminiSTT())
