"""Speech to text through the user's effective stt provider.

The format comes from the upload's magic bytes. WAV is decoded here with no extra tools; MP3,
OGG and WebM are decoded with ffmpeg when it is installed, and otherwise go only to network
providers, which decode them themselves (the local pocketsphinx refuses them).
"""

from __future__ import annotations

import logging
import subprocess  # noqa: S404  # ffmpeg runs with a fixed argv, audio on stdin
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cortex import errors
from preferences.selectors import effective_config
from preferences.voice import limits
from preferences.voice.audio import (
    AudioInput,
    Pcm,
    resample,
    sniff_format,
    wav_decode,
    wav_duration_ms,
)
from preferences.voice.errors import (
    AudioTooLong,
    DecoderUnavailable,
    EmptyFile,
    FileTooLarge,
    ProviderTimeout,
    provider_failure,
)

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger("cortex.voice")
DECODE_RATE = 16000


@dataclass(frozen=True)
class Transcript:
    """What was heard, by which provider, how long the audio lasts (None: unknown), its format."""

    text: str
    provider: str
    duration_ms: int | None
    format: str = ""


def check_upload_size(size: int) -> None:
    """Raise EmptyFile or FileTooLarge; callable before the body is read."""
    if size <= 0:
        raise EmptyFile()
    if size > limits.max_upload_bytes():
        raise FileTooLarge(
            f"The upload has {size} bytes; the limit is {limits.max_upload_bytes()} bytes."
        )


def _check_duration(duration_ms: int) -> None:
    if duration_ms > limits.max_audio_seconds() * 1000:
        raise AudioTooLong(
            f"The audio lasts {duration_ms / 1000:.1f} s; the limit is "
            f"{limits.max_audio_seconds()} s."
        )


def ffmpeg_decode(data: bytes, *, binary: str, rate: int, timeout: float) -> Pcm:
    """Any accepted format to 16-bit mono PCM at `rate`, cut just past the duration limit."""
    argv = [binary, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", "pipe:0"]
    argv += ["-t", str(limits.max_audio_seconds() + 1), "-f", "s16le", "-ac", "1"]
    argv += ["-ar", str(rate), "pipe:1"]
    try:
        done = subprocess.run(  # noqa: S603  # fixed argv
            argv, input=data, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ProviderTimeout("Decoding the audio took too long.") from exc
    if done.returncode != 0:
        raise errors.ValidationFailed(
            "The audio could not be decoded; the file may be damaged.", code="undecodable_audio"
        )
    return Pcm(done.stdout, rate)


def _prepare(data: bytes, fmt: str, *, needs_pcm: int, label: str) -> AudioInput:
    """Measure (and for local decoders, decode) the upload."""
    if fmt == "wav":
        _check_duration(wav_duration_ms(data))
        if not needs_pcm:
            return AudioInput(data, fmt)
        pcm = wav_decode(data)
        return AudioInput(data, fmt, Pcm(resample(pcm.data, pcm.rate, needs_pcm), needs_pcm))
    binary = limits.ffmpeg_binary()
    if binary is None:
        if needs_pcm:
            raise DecoderUnavailable(
                f"{label} reads only WAV on this hub: decoding {fmt.upper()} needs ffmpeg, which "
                "is not installed. Send WAV, or choose a network provider."
            )
        return AudioInput(data, fmt)
    pcm = ffmpeg_decode(
        data, binary=binary, rate=needs_pcm or DECODE_RATE, timeout=limits.provider_timeout()
    )
    _check_duration(pcm.duration_ms)
    return AudioInput(data, fmt, pcm if needs_pcm else None)


def transcription_run(
    *,
    user: User,
    data: bytes,
    provider_name: str = "",
    language: str = "",
    phrases: list[str] | None = None,
) -> Transcript:
    """Transcribe an uploaded recording with the user's stt provider (or a permitted one).

    Raises EmptyFile, FileTooLarge, UnsupportedMediaType, AudioTooLong, DecoderUnavailable,
    the preferences errors of effective_config and the provider errors.
    """
    check_upload_size(len(data))
    fmt = sniff_format(data[:64])
    override = {k: v for k, v in (("provider", provider_name), ("language", language)) if v}
    config = effective_config(user=user, kind="stt", session_override=override or None)
    backend = config.backend()
    transcribe: Any = getattr(backend, "transcribe", None)
    if transcribe is None:
        raise errors.ValidationFailed(
            f"The {backend.id} provider cannot transcribe.", code="unsupported_provider"
        )
    audio = _prepare(data, fmt, needs_pcm=getattr(backend, "needs_pcm", 0), label=backend.label)
    duration = audio.pcm.duration_ms if audio.pcm is not None else None
    if fmt == "wav":
        duration = wav_duration_ms(data)
    logger.info(
        "transcribe: user=%s provider=%s format=%s bytes=%s",
        user.pk,
        config.provider,
        fmt,
        len(data),
    )
    try:
        text = transcribe(
            config.values,
            audio=audio,
            language=str(config.values.get("language") or ""),
            phrases=phrases or None,
            timeout=limits.provider_timeout(),
        )
    except errors.CortexError:
        raise
    except Exception as exc:
        raise provider_failure(exc, backend.label) from None
    return Transcript(text=text, provider=config.provider, duration_ms=duration, format=fmt)
