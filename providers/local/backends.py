"""Local backends that need no network: espeak-ng (tts) and pocketsphinx (stt)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import struct
import subprocess  # noqa: S404  # espeak-ng runs with a fixed argv and the text on stdin
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from cortex import errors
from providers import errors as voice_errors
from providers.audio import AudioInput
from providers.base import Parameter, SpeechBackend, TranscriptionBackend, VerifyResult
from providers.registry import registry

ESPEAK_BINARIES = ("espeak-ng", "espeak")
#: espeak-ng voice names and language codes; never starts with "-" (it goes on the argv).
VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+-]{0,63}(/[A-Za-z0-9_+-]{1,64})?$")
PHRASE_WORD = re.compile(r"^[a-z][a-z']*$")
MAX_PHRASES = 50


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


class EspeakTTS(SpeechBackend):
    kind = "tts"
    id = "espeak"
    label = "espeak-ng (local)"
    network = False
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("voice", "string", default="en-us", description="espeak-ng voice, e.g. en-us."),
        Parameter("speed", "integer", default=175, description="Words per minute."),
    )

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        started = time.monotonic()
        found = espeak_binary()
        latency = int((time.monotonic() - started) * 1000)
        if found is None:
            return VerifyResult(False, latency, "unreachable", "espeak-ng is not installed.")
        return VerifyResult(True, latency, "", f"espeak-ng found at {found}.")

    def synthesize(
        self, values: dict[str, Any], text: str, *, timeout: float
    ) -> Iterator[tuple[int, bytes]]:
        """Run espeak-ng on the text and yield (rate, 16-bit PCM) as its stdout produces it."""
        binary = espeak_binary()
        if binary is None:
            raise voice_errors.ProviderUnavailable("espeak-ng is not installed on this hub.")
        voice = str(values.get("voice") or "en-us")
        if not VOICE_NAME.match(voice):
            raise voice_errors.UnknownVoice(f"Not an espeak-ng voice name: {voice[:64]!r}.")
        speed = min(max(int(values.get("speed") or 175), 80), 450)
        return _espeak_run([binary, "--stdout", "-v", voice, "-s", str(speed)], text, timeout)

    def voices(self, values: dict[str, Any], *, timeout: float) -> list[dict[str, str]]:
        """The voices `espeak-ng --voices` lists, one per language code."""
        binary = espeak_binary()
        if binary is None:
            raise voice_errors.ProviderUnavailable("espeak-ng is not installed on this hub.")
        try:
            done = subprocess.run(  # noqa: S603  # fixed argv
                [binary, "--voices"], capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise voice_errors.ProviderTimeout("espeak-ng did not answer in time.") from exc
        found: dict[str, dict[str, str]] = {}
        for line in done.stdout.decode("utf-8", "replace").splitlines()[1:]:
            parts = line.split()
            if len(parts) < 5:
                continue
            language, age_gender, name = parts[1], parts[2], parts[3]
            found.setdefault(
                language,
                {
                    "id": language,
                    "name": name.replace("_", " "),
                    "language": language,
                    "gender": age_gender.rsplit("/", 1)[-1].replace("-", ""),
                },
            )
        return list(found.values())


def _espeak_run(argv: list[str], text: str, timeout: float) -> Iterator[tuple[int, bytes]]:
    process = subprocess.Popen(  # noqa: S603  # fixed argv; text travels on stdin
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        assert process.stdin and process.stdout  # noqa: S101  # both are pipes above
        # Pieces are short (the caller splits sentences), so this never fills the pipe.
        try:
            process.stdin.write(text.encode("utf-8"))
            process.stdin.close()
        except BrokenPipeError:
            pass  # espeak-ng exited early (an unknown voice): judged by its output below
        header = process.stdout.read(44)
        if len(header) < 44 or header[:4] != b"RIFF":
            process.wait(timeout=5)
            if timed_out.is_set():
                raise voice_errors.ProviderTimeout("espeak-ng did not finish in time.")
            raise voice_errors.UnknownVoice(
                f"espeak-ng could not speak with voice {argv[argv.index('-v') + 1]!r}."
            )
        (rate,) = struct.unpack_from("<I", header, 24)
        # An unbuffered-by-default pipe is a BufferedReader; the stubs say only IO[bytes].
        while chunk := process.stdout.read1(8192):  # type: ignore[attr-defined]
            yield rate, chunk
        process.wait(timeout=5)
        if timed_out.is_set():
            raise voice_errors.ProviderTimeout("espeak-ng did not finish in time.")
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


class PocketsphinxSTT(TranscriptionBackend):
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

    #: The local decoder reads 16 kHz mono PCM; the caller decodes the upload first.
    needs_pcm: ClassVar[int] = 16000

    def transcribe(
        self,
        values: dict[str, Any],
        *,
        audio: AudioInput,
        language: str = "",
        phrases: list[str] | None = None,
        timeout: float,
    ) -> str:
        """Decode with the shipped English model, or only the given phrases when there are some."""
        language = (language or str(values.get("language") or "en-us")).lower()
        if not language.startswith("en"):
            raise errors.ValidationFailed(
                "The local pocketsphinx model only understands English (en-us).",
                code="unsupported_language",
                fields={"language": ["Only en / en-us is available locally."]},
            )
        if pocketsphinx_model_dir() is None:
            raise voice_errors.ProviderUnavailable("pocketsphinx or its English model is missing.")
        if audio.pcm is None or audio.pcm.rate != self.needs_pcm:
            raise voice_errors.DecoderUnavailable("pocketsphinx needs 16 kHz PCM audio.")
        from pocketsphinx import Decoder

        decoder = Decoder(loglevel="FATAL")
        if phrases:
            decoder.add_jsgf_string("phrases", _grammar(decoder, phrases))
            decoder.activate_search("phrases")
        decoder.start_utt()
        decoder.process_raw(audio.pcm.data, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr.strip() if hypothesis is not None else ""


def _grammar(decoder: Any, phrases: list[str]) -> str:
    """A JSGF grammar of whole phrases; every word must be in the model's dictionary."""
    if len(phrases) > MAX_PHRASES:
        raise errors.ValidationFailed(fields={"phrases": [f"At most {MAX_PHRASES} phrases."]})
    alternatives: list[str] = []
    unknown: list[str] = []
    for phrase in phrases:
        words = phrase.lower().split()
        for word in words:
            if not PHRASE_WORD.match(word) or decoder.lookup_word(word) is None:
                unknown.append(word)
        if words:
            alternatives.append(" ".join(words))
    if unknown or not alternatives:
        problem = f"Unknown words: {', '.join(sorted(set(unknown)))[:200]}." if unknown else ""
        raise errors.ValidationFailed(fields={"phrases": [problem or "No words given."]})
    return "#JSGF V1.0;\ngrammar phrases;\npublic <utt> = " + " | ".join(alternatives) + " ;\n"


registry.register(EspeakTTS())
registry.register(PocketsphinxSTT())
