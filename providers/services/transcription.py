"""Speech to text with an stt backend: accept, measure and decode an upload, then transcribe.

Which backend and values a user gets is decided by preferences (preferences.services.voice);
this module takes them resolved.

The format comes from the upload's magic bytes. WAV is read here with no extra tools; MP3, OGG
(Vorbis, Opus) and WebM (Opus) are decoded in-process with PyAV, whose wheels bundle FFmpeg's
libraries. Every upload is decoded (or measured) before any provider sees it, so the duration
limit and damaged files are caught here; network providers still get the bytes as sent.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cortex import errors
from providers import limits
from providers.audio import (
    ACCEPTED_TEXT,
    PCM_WIDTH,
    AudioInput,
    Pcm,
    resample,
    sniff_format,
    wav_decode,
    wav_duration_ms,
)
from providers.base import TranscriptionBackend
from providers.errors import (
    AudioTooLong,
    EmptyFile,
    FileTooLarge,
    UndecodableAudio,
    UnsupportedMediaType,
    failure_for_exception,
)

if TYPE_CHECKING:
    from providers.base import Backend

#: Room for the multipart envelope around the file when judging Content-Length up front.
MULTIPART_SLACK = 64 * 1024

logger = logging.getLogger("cortex.voice")
DECODE_RATE = 16000


@dataclass(frozen=True)
class Transcript:
    """What was heard, by which provider, how long the audio lasts, its format."""

    text: str
    provider: str
    duration_ms: int
    format: str = ""


def check_upload_size(size: int) -> None:
    """Raise EmptyFile or FileTooLarge; callable before the body is read."""
    if size <= 0:
        raise EmptyFile()
    if size > limits.max_upload_bytes():
        raise FileTooLarge(
            f"The upload has {size} bytes; the limit is {limits.max_upload_bytes()} bytes."
        )


def upload_length_check(content_length: int) -> None:
    """Refuse a multipart request whose Content-Length alone is over the limit (FileTooLarge)."""
    if content_length > limits.max_upload_bytes() + MULTIPART_SLACK:
        raise FileTooLarge(
            f"The upload is larger than the limit of {limits.max_upload_bytes()} bytes."
        )


def upload_format(data: bytes) -> str:
    """Check an upload's size and return its sniffed format (EmptyFile, FileTooLarge, 415)."""
    check_upload_size(len(data))
    return sniff_format(data[:64])


def _check_duration(duration_ms: int) -> None:
    if duration_ms > limits.max_audio_seconds() * 1000:
        raise AudioTooLong(
            f"The audio lasts {duration_ms / 1000:.1f} s; the limit is "
            f"{limits.max_audio_seconds()} s."
        )


#: PyAV demuxer for each sniffed format: the container is never probed from the bytes.
DEMUXERS = {"mp3": "mp3", "ogg": "ogg", "webm": "webm"}


def _too_long(limit_s: int, estimate_us: int | None) -> AudioTooLong:
    if estimate_us and estimate_us > limit_s * 1_000_000:
        lasts = f"lasts {estimate_us / 1_000_000:.1f} s"
    else:
        lasts = f"lasts more than {limit_s} s"
    return AudioTooLong(f"The audio {lasts}; the limit is {limit_s} s.")


def _av_decode(data: bytes, fmt: str, *, rate: int, max_seconds: int) -> Pcm:
    """MP3, OGG (Vorbis, Opus) or WebM to 16-bit mono PCM at `rate`, with PyAV's bundled FFmpeg.

    Decoding stops as soon as the output passes `max_seconds` (AudioTooLong), so a long or
    lying file costs no more than the limit; damaged input raises UndecodableAudio, a container
    with no audio stream UnsupportedMediaType.
    """
    import av

    limit_bytes = max_seconds * rate * PCM_WIDTH
    out = bytearray()

    def take(frames: list[Any]) -> None:
        for frame in frames:
            out.extend(bytes(frame.planes[0])[: frame.samples * PCM_WIDTH])
        if len(out) > limit_bytes:
            raise _too_long(max_seconds, estimate)

    estimate: int | None = None
    try:
        with av.open(io.BytesIO(data), mode="r", format=DEMUXERS[fmt]) as container:
            estimate = container.duration
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise UnsupportedMediaType(
                    f"The {fmt.upper()} file holds no audio; send {ACCEPTED_TEXT} with sound in it."
                )
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            for packet in container.demux(stream):
                for frame in packet.decode():
                    # Packets of an audio stream decode to AudioFrames (the stubs allow any frame).
                    take(resampler.resample(frame))  # type: ignore[arg-type]
            take(resampler.resample(None))
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:  # FFmpeg's and PyAV's own
        logger.info("audio decode failed: format=%s error=%s", fmt, type(exc).__name__)
        raise UndecodableAudio(
            f"The {fmt.upper()} audio could not be decoded; the file may be damaged or cut short."
        ) from None
    if not out:
        raise UndecodableAudio(f"The {fmt.upper()} file holds no decodable sound.")
    return Pcm(bytes(out), rate)


def _prepare(data: bytes, fmt: str, *, needs_pcm: int) -> tuple[AudioInput, int]:
    """(the upload, with PCM if the backend needs it; its duration in ms).

    Compressed uploads are always decoded, which measures them and proves they are sound.
    """
    if fmt == "wav":
        duration = wav_duration_ms(data)
        _check_duration(duration)
        if not needs_pcm:
            return AudioInput(data, fmt), duration
        pcm = wav_decode(data)
        return AudioInput(
            data, fmt, Pcm(resample(pcm.data, pcm.rate, needs_pcm), needs_pcm)
        ), duration
    pcm = _av_decode(
        data, fmt, rate=needs_pcm or DECODE_RATE, max_seconds=limits.max_audio_seconds()
    )
    return AudioInput(data, fmt, pcm if needs_pcm else None), pcm.duration_ms


def transcription_run(
    *,
    backend: Backend,
    values: dict[str, Any],
    data: bytes,
    fmt: str,
    phrases: list[str] | None = None,
    actor_id: int | None = None,
) -> Transcript:
    """Transcribe an accepted upload (see upload_format) with `backend` and its `values`.

    Raises AudioTooLong, UndecodableAudio, unsupported_provider for a backend that cannot
    transcribe, and the provider errors (providers.errors).
    """
    if not isinstance(backend, TranscriptionBackend):
        raise errors.ValidationFailed(
            f"The {backend.id} provider cannot transcribe.", code="unsupported_provider"
        )
    audio, duration = _prepare(data, fmt, needs_pcm=backend.needs_pcm)
    logger.info(
        "transcribe: user=%s provider=%s format=%s bytes=%s", actor_id, backend.id, fmt, len(data)
    )
    try:
        text = backend.transcribe(
            values,
            audio=audio,
            language=str(values.get("language") or ""),
            phrases=phrases or None,
            timeout=limits.provider_timeout(),
        )
    except errors.CortexError:
        raise
    except Exception as exc:
        raise failure_for_exception(exc, backend.label) from None
    return Transcript(text=text, provider=backend.id, duration_ms=duration, format=fmt)
