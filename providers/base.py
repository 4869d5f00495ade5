"""What a provider declares: per kind, its id, parameters, a verify call and its client.

A provider package (providers/<name>/backends.py) registers one backend per kind it serves:
a ChatBackend (llm) hands out the streaming chat client, a SpeechBackend (tts) speaks, a
TranscriptionBackend (stt) transcribes. The registry finds them; nothing else names them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from providers.audio import AudioInput
    from providers.llm import LLMClient, LLMSettings

KINDS = ("llm", "tts", "stt")

PARAMETER_TYPES = ("string", "url", "integer", "number", "boolean")


@dataclass(frozen=True)
class Parameter:
    """One setting of a backend; secret ones are encrypted at rest and only shown masked."""

    name: str
    type: str = "string"
    secret: bool = False
    default: Any = None
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a minimal real call to a provider."""

    ok: bool
    latency_ms: int
    error_code: str = ""
    message: str = ""


class Backend:
    """Base of every provider backend; subclasses set the class attributes and `verify`."""

    kind: ClassVar[str] = ""
    id: ClassVar[str] = ""
    label: ClassVar[str] = ""
    #: Whether calls leave the machine (and so pass the SSRF guard).
    network: ClassVar[bool] = True
    parameters: ClassVar[tuple[Parameter, ...]] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.id)

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def secret_names(self) -> set[str]:
        return {p.name for p in self.parameters if p.secret}

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters if p.default is not None}

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        raise NotImplementedError


class ChatBackend(Backend):
    """An llm backend: its chat client streams one completion with tool calls."""

    kind: ClassVar[str] = "llm"
    #: The providers.llm.LLMClient subclass that speaks this provider's chat protocol.
    client_class: ClassVar[type[LLMClient]]

    def chat_client(self, settings: LLMSettings) -> LLMClient:
        return self.client_class(settings)


class SpeechBackend(Backend):
    """A tts backend: speaks text as (sample rate, 16-bit mono PCM) pieces; lists voices."""

    kind: ClassVar[str] = "tts"

    def synthesize(
        self, values: dict[str, Any], text: str, *, timeout: float
    ) -> Iterator[tuple[int, bytes]]:
        raise NotImplementedError

    def voices(self, values: dict[str, Any], *, timeout: float) -> list[dict[str, str]]:
        raise NotImplementedError


class TranscriptionBackend(Backend):
    """An stt backend: turns an upload into text."""

    kind: ClassVar[str] = "stt"
    #: Sample rate of the PCM the backend needs decoded first (0: it takes the bytes as sent).
    needs_pcm: ClassVar[int] = 0

    def transcribe(
        self,
        values: dict[str, Any],
        *,
        audio: AudioInput,
        language: str = "",
        phrases: list[str] | None = None,
        timeout: float,
    ) -> str:
        raise NotImplementedError
