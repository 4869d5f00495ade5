"""Speech and transcription with the provider a user's preferences resolve to.

Preferences decide which backend and values apply (effective_config, with a permitted one-off
provider as a session-style override); the provider work itself is providers.services.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from preferences.selectors import effective_config
from providers.services import speech, transcription

if TYPE_CHECKING:
    from accounts.models import User


def speech_synthesize(
    *, user: User, text: str, voice: str = "", provider_name: str = ""
) -> speech.Speech:
    """Start speaking `text` with the user's tts provider (or a permitted one-off provider).

    Raises TextTooLong, the preferences errors of effective_config (provider_not_allowed,
    field_locked, ...) and the provider errors of the first piece.
    """
    pieces = speech.speech_pieces(text=text)
    override = {k: v for k, v in (("provider", provider_name), ("voice", voice)) if v}
    config = effective_config(user=user, kind="tts", session_override=override or None)
    return speech.speech_start(
        backend=config.backend(), values=config.values, pieces=pieces, actor_id=user.pk
    )


def voices_list(*, user: User, provider: str = "") -> tuple[str, list[dict[str, str]]]:
    """(provider, voices) for the user's tts provider or a permitted named one."""
    override = {"provider": provider} if provider else None
    config = effective_config(user=user, kind="tts", session_override=override)
    return config.provider, speech.voices_of(backend=config.backend(), values=config.values)


def transcription_run(
    *,
    user: User,
    data: bytes,
    provider_name: str = "",
    language: str = "",
    phrases: list[str] | None = None,
) -> transcription.Transcript:
    """Transcribe an uploaded recording with the user's stt provider (or a permitted one).

    Raises EmptyFile, FileTooLarge, UnsupportedMediaType, AudioTooLong, UndecodableAudio,
    the preferences errors of effective_config and the provider errors.
    """
    fmt = transcription.upload_format(data)
    override = {k: v for k, v in (("provider", provider_name), ("language", language)) if v}
    config = effective_config(user=user, kind="stt", session_override=override or None)
    return transcription.transcription_run(
        backend=config.backend(),
        values=config.values,
        data=data,
        fmt=fmt,
        phrases=phrases,
        actor_id=user.pk,
    )
