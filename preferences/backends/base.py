"""What a provider backend declares: its kind, id, parameters and a verify call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

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
