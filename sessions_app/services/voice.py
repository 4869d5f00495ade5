"""Spoken chat messages: a recording becomes the user's message; an answer can be spoken."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.core.files.storage import default_storage

from cortex import errors
from sessions_app.models import ChatSession, Message, MessageRole
from sessions_app.services.messages import message_post, turn_may_start

if TYPE_CHECKING:
    from accounts.models import User
    from providers.services.speech import Speech

logger = logging.getLogger("cortex.sessions")


class NothingHeard(errors.ValidationFailed):
    code = "nothing_heard"
    default_message = "No words were heard in the recording; nothing was posted."


class NotSpeakable(errors.ValidationFailed):
    code = "not_speakable"
    default_message = "Only an assistant message with text can be spoken."


def message_post_audio(
    *,
    actor: User,
    session: ChatSession,
    audio: bytes,
    language: str = "",
    phrases: list[str] | None = None,
    provider_name: str = "",
) -> tuple[Message, Message]:
    """Transcribe a recording, keep it in storage, and post the transcript as the user's message.

    Nothing is stored when the recording is refused, unheard or the turn may not start; the
    stored file is removed again if posting fails after it was saved.
    """
    from preferences.services.voice import transcription_run
    from providers.services.storage import audio_save

    turn_may_start(session=session)  # cheap early answer; message_post checks again under lock
    transcript = transcription_run(
        user=actor, data=audio, provider_name=provider_name, language=language, phrases=phrases
    )
    text = " ".join(transcript.text.split())
    if not text:
        raise NothingHeard()
    name = audio_save(user=actor, data=audio)
    try:
        return message_post(
            actor=actor,
            session=session,
            content=text,
            audio_name=name,
            audio_duration_ms=transcript.duration_ms,
        )
    except BaseException:
        default_storage.delete(name)
        raise


def message_speech(
    *, actor: User, message: Message, voice: str = "", provider_name: str = ""
) -> Speech:
    """Start speaking an assistant message with the actor's tts provider."""
    from preferences.services.voice import speech_synthesize

    if message.role != MessageRole.ASSISTANT or not message.content.strip():
        raise NotSpeakable()
    logger.info("speak message: user=%s message=%s", actor.pk, message.pk)
    return speech_synthesize(
        user=actor, text=message.content, voice=voice, provider_name=provider_name
    )
