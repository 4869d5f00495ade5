"""sessions_app/services/voice.py with real espeak-ng and pocketsphinx: a recording becomes the
user's message (kept in storage) or nothing at all; only an assistant's text is spoken."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from cortex.testing import wait_until
from preferences.services.voice import speech_synthesize
from providers.audio import wav_encode
from providers.tests.llm_server import openai_text
from sessions_app.models import Message
from sessions_app.services.messages import TurnInProgress, message_post
from sessions_app.services.sessions import session_create
from sessions_app.services.voice import (
    NothingHeard,
    NotSpeakable,
    message_post_audio,
    message_speech,
)
from sessions_app.tests.conftest import configure_llm

pytestmark = pytest.mark.django_db(transaction=True)

PHRASES = ["hello world", "open the door", "turn on the light", "close the window"]


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Iterator[Path]:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    cache.clear()
    yield tmp_path / "media"
    cache.clear()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _spoken(user: Any, text: str) -> bytes:
    speech = speech_synthesize(user=user, text=text, voice="en-us")
    try:
        return wav_encode(b"".join(speech.chunks), speech.sample_rate)
    finally:
        speech.close()


def test_message_post_audio_posts_the_transcript_and_keeps_the_recording(
    user, llm_server, fast_turns, media
) -> None:  # type: ignore[no-untyped-def]
    configure_llm(user, llm_server)
    llm_server.add(openai_text(["On it."]))
    chat = session_create(actor=user)
    recording = _spoken(user, "Open the door.")
    spoken, assistant = message_post_audio(
        actor=user, session=chat, audio=recording, phrases=PHRASES
    )
    assert (spoken.role, spoken.content) == ("user", "open the door")
    assert spoken.audio_duration_ms and spoken.audio_duration_ms > 0
    (stored,) = _files(media)
    assert stored.read_bytes() == recording
    assert spoken.audio.name.endswith(stored.name)
    wait_until(lambda: Message.objects.filter(pk=assistant.pk, status="done").exists(), timeout=60)


def test_message_post_audio_stores_nothing_when_nothing_is_heard_or_busy(user, media) -> None:  # type: ignore[no-untyped-def]
    chat = session_create(actor=user)
    with pytest.raises(NothingHeard) as silent:
        message_post_audio(
            actor=user, session=chat, audio=wav_encode(b"\x00\x00" * 16000, 16000), phrases=PHRASES
        )
    assert silent.value.code == "nothing_heard"
    message_post(actor=user, session=chat, content="typed", start_turn=False)
    with pytest.raises(TurnInProgress):
        message_post_audio(actor=user, session=chat, audio=_spoken(user, "Hello world."))
    assert Message.objects.filter(session=chat).count() == 2  # only the typed turn
    assert _files(media) == []


def test_message_speech_speaks_only_an_assistants_text(user) -> None:  # type: ignore[no-untyped-def]
    chat = session_create(actor=user)
    question = Message.objects.create(session=chat, role="user", content="Hello?")
    empty = Message.objects.create(session=chat, role="assistant", content="  ")
    answer = Message.objects.create(session=chat, role="assistant", content="Turn on the light.")
    for message in (question, empty):
        with pytest.raises(NotSpeakable) as refused:
            message_speech(actor=user, message=message)
        assert refused.value.code == "not_speakable"
    speech = message_speech(actor=user, message=answer, voice="en-us")
    try:
        assert speech.provider == "espeak" and speech.sample_rate > 0
        assert len(b"".join(speech.chunks)) > speech.sample_rate  # over half a second of audio
    finally:
        speech.close()
