"""Local backends that need no network: espeak-ng (tts) and pocketsphinx (stt)."""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path
from typing import Any, ClassVar

from preferences.backends.base import Backend, Parameter, VerifyResult
from preferences.backends.registry import registry

ESPEAK_BINARIES = ("espeak-ng", "espeak")


def espeak_binary() -> str | None:
    """Path of the espeak-ng (or espeak) binary, if installed."""
    for name in ESPEAK_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


def pocketsphinx_model_dir() -> Path | None:
    """Directory of the English model shipped inside the pocketsphinx package, if installed."""
    if importlib.util.find_spec("pocketsphinx") is None:
        return None
    import pocketsphinx

    path = Path(pocketsphinx.get_model_path())
    return path if (path / "en-us").is_dir() else None


class EspeakTTS(Backend):
    kind = "tts"
    id = "espeak"
    label = "espeak-ng (local)"
    network = False
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("voice", "string", default="en", description="espeak-ng voice, e.g. en-us."),
        Parameter("speed", "integer", default=175, description="Words per minute."),
    )

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        started = time.monotonic()
        found = espeak_binary()
        latency = int((time.monotonic() - started) * 1000)
        if found is None:
            return VerifyResult(False, latency, "unreachable", "espeak-ng is not installed.")
        return VerifyResult(True, latency, "", f"espeak-ng found at {found}.")


class PocketsphinxSTT(Backend):
    kind = "stt"
    id = "pocketsphinx"
    label = "PocketSphinx (local)"
    network = False
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("language", "string", default="en-us", description="Model language."),
    )

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        started = time.monotonic()
        found = pocketsphinx_model_dir()
        latency = int((time.monotonic() - started) * 1000)
        if found is None:
            return VerifyResult(
                False, latency, "unreachable", "pocketsphinx or its English model is missing."
            )
        return VerifyResult(True, latency, "", "pocketsphinx and its English model are installed.")


registry.register(EspeakTTS())
registry.register(PocketsphinxSTT())
