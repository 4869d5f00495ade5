"""Google Gemini backends over the REST API (generateContent, models.get) via httpx:
parameters, verification, speech and transcription; the streaming chat client is in chat.py.

The key travels in the `x-goog-api-key` header, never in the URL, so it cannot end up in
access logs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from providers.audio import AudioInput, wav_decode
from providers.base import (
    Backend,
    ChatBackend,
    Parameter,
    SpeechBackend,
    TranscriptionBackend,
    VerifyResult,
)
from providers.errors import ProviderUnavailable, failure_for_exception, failure_for_status
from providers.gemini.chat import GeminiClient
from providers.gemini.urls import DEFAULT_BASE_URL, model_path
from providers.http import classify_response, httpx_client, run_verify
from providers.registry import registry

#: Gemini speech answers `audio/L16;codec=pcm;rate=24000` unless it names another rate.
GEMINI_PCM_RATE = 24000
GEMINI_VOICES = (
    "Achernar", "Achird", "Algenib", "Algieba", "Alnilam", "Aoede", "Autonoe", "Callirrhoe",
    "Charon", "Despina", "Enceladus", "Erinome", "Fenrir", "Gacrux", "Iapetus", "Kore",
    "Laomedeia", "Leda", "Orus", "Puck", "Pulcherrima", "Rasalgethi", "Sadachbia",
    "Sadaltager", "Schedar", "Sulafat", "Umbriel", "Vindemiatrix", "Zephyr", "Zubenelgenubi",
)  # fmt: skip
_RATE = re.compile(r"rate=(\d+)")


def generate(
    values: dict[str, Any], body: dict[str, Any], timeout: float, label: str
) -> dict[str, Any]:
    """One generateContent call for the voice endpoints; failures become voice errors."""
    key = values.get("api_key") or ""
    url = model_path(values.get("base_url") or DEFAULT_BASE_URL, values["model"])
    try:
        with httpx_client(timeout) as client:
            response = client.post(
                f"{url}:generateContent", headers={"x-goog-api-key": key}, json=body
            )
            if response.status_code >= 300:
                raise failure_for_status(
                    label, response.status_code, body=response.text, headers=response.headers
                )
            data = response.json()
    except Exception as exc:
        raise failure_for_exception(exc, label) from None
    if not isinstance(data, dict):
        raise ProviderUnavailable(f"{label} sent an unusable answer.")
    return data


def answer_parts(data: dict[str, Any]) -> list[dict[str, Any]]:
    candidates = data.get("candidates") or [{}]
    parts = ((candidates[0] or {}).get("content") or {}).get("parts") or []
    return [part for part in parts if isinstance(part, dict)]


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


class GeminiLLM(_GeminiBackend, ChatBackend):
    kind = "llm"
    id = "gemini"
    label = "Google Gemini"
    client_class = GeminiClient
    parameters: ClassVar[tuple[Parameter, ...]] = (
        *_COMMON,
        Parameter("model", "string", required=True, description="e.g. gemini-2.5-flash."),
        Parameter("temperature", "number"),
    )

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        return self._call(values, timeout, generate=True)


class GeminiTTS(_GeminiBackend, SpeechBackend):
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

    def synthesize(
        self, values: dict[str, Any], text: str, *, timeout: float
    ) -> Iterator[tuple[int, bytes]]:
        """generateContent with the AUDIO modality; yields the inline PCM of the answer."""
        body = {
            "contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {
                    "voiceConfig": {
                        "prebuiltVoiceConfig": {"voiceName": values.get("voice") or "Kore"}
                    }
                },
            },
        }
        data = generate(values, body, timeout, self.label)
        found = False
        for part in answer_parts(data):
            inline = part.get("inlineData") or part.get("inline_data") or {}
            if not inline.get("data"):
                continue
            try:
                raw = base64.b64decode(inline["data"])
            except ValueError:
                raise ProviderUnavailable(f"{self.label} sent unusable audio.") from None
            mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
            if mime.startswith(("audio/wav", "audio/x-wav")):
                pcm = wav_decode(raw)
                found = True
                yield pcm.rate, pcm.data
                continue
            match = _RATE.search(mime)
            found = True
            yield (int(match.group(1)) if match else GEMINI_PCM_RATE), raw
        if not found:
            raise ProviderUnavailable(f"{self.label} answered without audio.")

    def voices(self, values: dict[str, Any], *, timeout: float) -> list[dict[str, str]]:
        """Gemini's prebuilt voices (a fixed list in the API documentation)."""
        return [{"id": v, "name": v, "language": "", "gender": ""} for v in GEMINI_VOICES]


class GeminiSTT(_GeminiBackend, TranscriptionBackend):
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

    def transcribe(
        self,
        values: dict[str, Any],
        *,
        audio: AudioInput,
        language: str = "",
        phrases: list[str] | None = None,
        timeout: float,
    ) -> str:
        """generateContent with the audio inline and an instruction to transcribe it verbatim."""
        prompt = "Transcribe the speech in this audio verbatim. Answer with the transcript only."
        language = language or values.get("language") or ""
        if language:
            prompt += f" The language is {language}."
        if phrases:
            prompt += " Expected phrases: " + "; ".join(phrases) + "."
        body = {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": prompt},
                        {
                            "inlineData": {
                                "mimeType": audio.mime,
                                "data": base64.b64encode(audio.data).decode("ascii"),
                            }
                        },
                    ],
                }
            ]
        }
        data = generate(values, body, timeout, self.label)
        return "".join(str(p.get("text") or "") for p in answer_parts(data)).strip()


registry.register(GeminiLLM())
registry.register(GeminiTTS())
registry.register(GeminiSTT())
