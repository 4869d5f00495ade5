"""Text to speech with a tts backend, piece by piece.

Which backend and values a user gets is decided by preferences (preferences.services.voice);
this module takes them resolved.

Text is split into sentences and each is spoken in turn, so a stream can start after the first
sentence rather than after the whole text. The first piece is produced before the caller gets
the result: provider errors (bad key, timeout) surface as errors, not as a truncated stream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cortex import errors
from providers import limits
from providers.audio import resample, split_sentences, wav_encode, wav_header
from providers.base import SpeechBackend
from providers.errors import TextTooLong, failure_for_exception

if TYPE_CHECKING:
    from providers.base import Backend

logger = logging.getLogger("cortex.voice")
#: Rate reported for a text that produced no audio at all.
SILENT_RATE = 16000


@dataclass
class Speech:
    """Audio being produced: 16-bit little-endian mono PCM chunks at `sample_rate`."""

    provider: str
    sample_rate: int
    chunks: Iterator[bytes]

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


def _speaker(backend: Backend) -> SpeechBackend:
    if not isinstance(backend, SpeechBackend):
        raise errors.ValidationFailed(
            f"The {backend.id} provider cannot do this.", code="unsupported_provider"
        )
    return backend


def _pieces(
    backend: SpeechBackend, values: dict[str, Any], pieces: list[str], timeout: float
) -> Iterator[tuple[int, bytes]]:
    for piece in pieces:
        try:
            yield from backend.synthesize(values, piece, timeout=timeout)
        except errors.CortexError:
            raise
        except Exception as exc:
            raise failure_for_exception(exc, backend.label) from None


def _aligned(rate: int, first: bytes, rest: Iterator[tuple[int, bytes]]) -> Iterator[bytes]:
    """Whole samples only, every piece at the first piece's rate."""
    carry = b""
    try:
        pending: tuple[int, bytes] | None = (rate, first)
        while pending is not None:
            piece_rate, chunk = pending
            data = carry + (chunk if piece_rate == rate else resample(chunk, piece_rate, rate))
            cut = len(data) // 2 * 2
            carry = data[cut:]
            if cut:
                yield data[:cut]
            pending = next(rest, None)
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()


def speech_pieces(*, text: str) -> list[str]:
    """The sentences to speak; raises TextTooLong or a validation error for nothing to say."""
    text = text.strip()
    if len(text) > limits.max_text_chars():
        raise TextTooLong(
            f"The text has {len(text)} characters; the limit is {limits.max_text_chars()}."
        )
    pieces = split_sentences(text)
    if not pieces:
        raise errors.ValidationFailed(fields={"text": ["Nothing to speak."]})
    return pieces


def speech_start(
    *, backend: Backend, values: dict[str, Any], pieces: list[str], actor_id: int | None = None
) -> Speech:
    """Start speaking `pieces` (see speech_pieces) with `backend` and its `values`.

    The first piece is produced here, so its provider errors (providers.errors) are raised
    to the caller; unsupported_provider for a backend that cannot speak.
    """
    speaker = _speaker(backend)
    logger.info(
        "speech: user=%s provider=%s chars=%s pieces=%s",
        actor_id,
        backend.id,
        sum(len(p) for p in pieces),
        len(pieces),
    )
    produced = _pieces(speaker, values, pieces, limits.provider_timeout())
    try:
        rate, first = next(produced)
    except StopIteration:
        return Speech(backend.id, SILENT_RATE, iter(()))
    return Speech(backend.id, rate, _aligned(rate, first, produced))


def _speech_audio(*, speech: Speech) -> bytes:
    """All of the audio as one WAV file (errors of later pieces propagate)."""
    return wav_encode(b"".join(speech.chunks), speech.sample_rate)


def _speech_guarded(*, speech: Speech) -> Iterator[bytes]:
    """The chunks for a response already under way: a failure ends the stream and is logged."""
    try:
        yield from speech.chunks
    except errors.CortexError as exc:
        logger.warning("speech stream ended early: provider=%s code=%s", speech.provider, exc.code)
    finally:
        speech.close()


def voices_of(*, backend: Backend, values: dict[str, Any]) -> list[dict[str, str]]:
    """The voices a tts backend offers; unsupported_provider or the provider errors."""
    speaker = _speaker(backend)
    try:
        return speaker.voices(values, timeout=limits.provider_timeout())
    except errors.CortexError:
        raise
    except Exception as exc:
        raise failure_for_exception(exc, backend.label) from None


@dataclass(frozen=True)
class SpeechBody:
    """What an answer carries for speech under way: whole bytes, or chunks to stream."""

    content_type: str
    headers: dict[str, str]
    content: bytes | Iterator[bytes]


def _with_header(header: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield header
    yield from chunks


def speech_body(*, speech: Speech, stream: bool, as_wav: bool) -> SpeechBody:
    """One WAV (stream=False), or chunks of raw PCM or of an open-ended WAV (stream=True)."""
    rate = speech.sample_rate
    headers = {
        "X-Sample-Rate": str(rate),
        "X-Voice-Provider": speech.provider,
        "Cache-Control": "no-store",
    }
    if not stream:
        try:
            audio = _speech_audio(speech=speech)
        finally:
            speech.close()
        return SpeechBody("audio/wav", headers, audio)
    chunks = _speech_guarded(speech=speech)
    if as_wav:
        return SpeechBody("audio/wav", headers, _with_header(wav_header(rate), chunks))
    headers["X-Audio-Encoding"] = "pcm_s16le"
    return SpeechBody(f"audio/L16;rate={rate};channels=1", headers, chunks)
