"""Text to speech through the user's effective tts provider, piece by piece.

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
from preferences.backends import Backend
from preferences.selectors import effective_config
from preferences.voice import limits
from preferences.voice.audio import resample, split_sentences, wav_encode
from preferences.voice.errors import TextTooLong, provider_failure

if TYPE_CHECKING:
    from accounts.models import User

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


def _capability(backend: Backend, method: str) -> Any:
    call = getattr(backend, method, None)
    if call is None:
        raise errors.ValidationFailed(
            f"The {backend.id} provider cannot do this.", code="unsupported_provider"
        )
    return call


def _pieces(
    backend: Backend, values: dict[str, Any], pieces: list[str], timeout: float
) -> Iterator[tuple[int, bytes]]:
    synthesize = _capability(backend, "synthesize")
    for piece in pieces:
        try:
            yield from synthesize(values, piece, timeout=timeout)
        except errors.CortexError:
            raise
        except Exception as exc:
            raise provider_failure(exc, backend.label) from None


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


def speech_synthesize(*, user: User, text: str, voice: str = "", provider_name: str = "") -> Speech:
    """Start speaking `text` with the user's tts provider (or a permitted one-off provider).

    Raises TextTooLong, the preferences errors of effective_config (provider_not_allowed,
    field_locked, ...) and the provider errors of the first piece.
    """
    text = text.strip()
    if len(text) > limits.max_text_chars():
        raise TextTooLong(
            f"The text has {len(text)} characters; the limit is {limits.max_text_chars()}."
        )
    pieces = split_sentences(text)
    if not pieces:
        raise errors.ValidationFailed(fields={"text": ["Nothing to speak."]})
    override = {k: v for k, v in (("provider", provider_name), ("voice", voice)) if v}
    config = effective_config(user=user, kind="tts", session_override=override or None)
    backend = config.backend()
    logger.info(
        "speech: user=%s provider=%s chars=%s pieces=%s",
        user.pk,
        config.provider,
        len(text),
        len(pieces),
    )
    produced = _pieces(backend, config.values, pieces, limits.provider_timeout())
    try:
        rate, first = next(produced)
    except StopIteration:
        return Speech(config.provider, SILENT_RATE, iter(()))
    return Speech(config.provider, rate, _aligned(rate, first, produced))


def speech_audio(*, speech: Speech) -> bytes:
    """All of the audio as one WAV file (errors of later pieces propagate)."""
    return wav_encode(b"".join(speech.chunks), speech.sample_rate)


def speech_guarded(*, speech: Speech) -> Iterator[bytes]:
    """The chunks for a response already under way: a failure ends the stream and is logged."""
    try:
        yield from speech.chunks
    except errors.CortexError as exc:
        logger.warning("speech stream ended early: provider=%s code=%s", speech.provider, exc.code)
    finally:
        speech.close()


def voices_list(*, user: User, provider: str = "") -> tuple[str, list[dict[str, str]]]:
    """(provider, voices) for the user's tts provider or a permitted named one."""
    override = {"provider": provider} if provider else None
    config = effective_config(user=user, kind="tts", session_override=override)
    backend = config.backend()
    voices = _capability(backend, "voices")
    try:
        return config.provider, voices(config.values, timeout=limits.provider_timeout())
    except errors.CortexError:
        raise
    except Exception as exc:
        raise provider_failure(exc, backend.label) from None
