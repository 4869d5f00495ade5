"""Voice services of preferences: the user's resolved tts/stt provider does the work.

The provider itself is a loopback server speaking the OpenAI audio protocol.
"""

from __future__ import annotations

import pytest

from preferences.errors import ProviderNotAllowed
from preferences.models import Scope
from preferences.services import speech_synthesize, transcription_run, voices_list
from providers.audio import wav_encode
from providers.errors import EmptyFile, TextTooLong, UnknownProvider
from providers.tests.voice.servers import PROVIDER_PCM, TRANSCRIPT, audio_server

pytestmark = pytest.mark.django_db

KEY = "sk-voice-secret-0123456789"


def _openai_layer(set_layer, user, kind, server, **extra):  # type: ignore[no-untyped-def]
    data = {"provider": "openai_compatible", "base_url": f"{server.url}/v1", "api_key": KEY}
    set_layer(Scope.USER, kind, {**data, **extra}, user=user)


def test_speech_synthesize_uses_the_users_provider_and_a_one_off_voice(user, set_layer):
    with audio_server() as server:
        _openai_layer(set_layer, user, "tts", server, voice="nova")
        speech = speech_synthesize(user=user, text="Hello there.", voice="echo")
        audio = b"".join(speech.chunks)
    assert (speech.provider, speech.sample_rate, audio) == (
        "openai_compatible",
        24000,
        PROVIDER_PCM,
    )
    request = server.requests[0]
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert (request["body"]["voice"], request["body"]["input"]) == ("echo", "Hello there.")


def test_speech_synthesize_refuses_before_any_provider_call(user, group_eng, set_layer, settings):
    settings.VOICE_MAX_TEXT_CHARS = 5
    with audio_server() as server:
        _openai_layer(set_layer, user, "tts", server)
        with pytest.raises(TextTooLong):
            speech_synthesize(user=user, text="Far too long.")
        settings.VOICE_MAX_TEXT_CHARS = 4000
        set_layer(Scope.GROUP, "tts", {"allowed_providers": ["espeak"]}, group=group_eng)
        with pytest.raises(ProviderNotAllowed) as refused:
            speech_synthesize(user=user, text="Hi.", provider_name="openai_compatible")
        with pytest.raises(UnknownProvider):
            speech_synthesize(user=user, text="Hi.", provider_name="nope")
    assert refused.value.code == "provider_not_allowed"
    assert server.requests == []


def test_voices_list_of_the_default_and_of_a_named_provider(user, group_eng, set_layer):
    provider, voices = voices_list(user=user)
    assert provider == "espeak" and any(v["id"] == "en-us" for v in voices)
    provider, voices = voices_list(user=user, provider="openai_compatible")
    assert provider == "openai_compatible" and {"alloy", "nova"} <= {v["id"] for v in voices}
    set_layer(Scope.GROUP, "tts", {"allowed_providers": ["espeak"]}, group=group_eng)
    with pytest.raises(ProviderNotAllowed):
        voices_list(user=user, provider="openai_compatible")


def test_transcription_run_uses_the_users_stt_provider(user, set_layer):
    audio = wav_encode(b"\x01\x00" * 8000, 16000)
    with audio_server() as server:
        _openai_layer(set_layer, user, "stt", server)
        heard = transcription_run(user=user, data=audio, language="en", phrases=["open"])
    assert (heard.text, heard.provider, heard.duration_ms, heard.format) == (
        TRANSCRIPT,
        "openai_compatible",
        500,
        "wav",
    )
    assert server.requests[0]["path"] == "/v1/audio/transcriptions"


def test_transcription_run_refuses_empty_uploads_and_disallowed_providers(
    user, group_eng, set_layer
):
    with audio_server() as server:
        _openai_layer(set_layer, user, "stt", server)
        with pytest.raises(EmptyFile):
            transcription_run(user=user, data=b"")
        set_layer(Scope.GROUP, "stt", {"allowed_providers": ["pocketsphinx"]}, group=group_eng)
        with pytest.raises(ProviderNotAllowed):
            transcription_run(
                user=user,
                data=wav_encode(b"\x00\x00" * 800, 16000),
                provider_name="openai_compatible",
            )
    assert server.requests == []
