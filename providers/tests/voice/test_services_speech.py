"""providers.services.speech called directly with resolved backends and a loopback provider."""

from __future__ import annotations

import pytest
from django.test import override_settings

from cortex import errors
from providers.audio import wav_decode, wav_encode
from providers.base import Backend
from providers.errors import TextTooLong
from providers.registry import registry
from providers.services.speech import (
    Speech,
    speech_body,
    speech_pieces,
    speech_start,
    voices_of,
)
from providers.tests.voice.servers import PROVIDER_PCM, audio_server

KEY = "sk-voice-secret-0123456789"


def _openai(server) -> tuple[Backend, dict[str, str]]:  # type: ignore[no-untyped-def]
    values = {"base_url": f"{server.url}/v1", "api_key": KEY, "model": "tts-1", "voice": "nova"}
    return registry.get("tts", "openai_compatible"), values


def test_speech_pieces_splits_sentences_and_refuses_empty_or_too_long():
    assert speech_pieces(text="  One. Two?  ") == ["One.", "Two?"]
    with pytest.raises(errors.ValidationFailed) as empty:
        speech_pieces(text="   \n ")
    assert empty.value.fields == {"text": ["Nothing to speak."]}
    with override_settings(VOICE_MAX_TEXT_CHARS=10), pytest.raises(TextTooLong) as long:
        speech_pieces(text="x" * 11)
    assert long.value.code == "text_too_long"
    with override_settings(VOICE_MAX_TEXT_CHARS=10):
        assert speech_pieces(text=" " * 50 + "Short." + " " * 50) == ["Short."]


def test_speech_start_produces_the_first_piece_before_returning():
    with audio_server() as server:
        backend, values = _openai(server)
        speech = speech_start(backend=backend, values=values, pieces=["One.", "Two."], actor_id=7)
        assert isinstance(speech, Speech)
        assert (speech.provider, speech.sample_rate) == ("openai_compatible", 24000)
        assert len(server.requests) == 1  # the second piece waits for the reader
        audio = b"".join(speech.chunks)
    assert audio == PROVIDER_PCM * 2
    assert [r["body"]["input"] for r in server.requests] == ["One.", "Two."]


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("unauthorized", "invalid_key"),
        ("rate_limited", "rate_limited"),
        ("error", "provider_unavailable"),
    ],
)
def test_speech_start_raises_the_first_pieces_provider_error(mode, code):
    with audio_server(mode) as server:
        backend, values = _openai(server)
        with pytest.raises(errors.CortexError) as exc:
            speech_start(backend=backend, values=values, pieces=["Hi."])
    assert exc.value.code == code
    assert KEY not in str(exc.value.message)  # the server echoes the key back in "error"


def test_speech_start_refuses_a_backend_that_cannot_speak():
    with pytest.raises(errors.ValidationFailed) as exc:
        speech_start(backend=registry.get("stt", "pocketsphinx"), values={}, pieces=["Hi."])
    assert exc.value.code == "unsupported_provider"


def test_voices_of_lists_a_tts_backends_voices_and_refuses_other_kinds():
    voices = voices_of(backend=registry.get("tts", "espeak"), values={})
    assert {"id": "en-us", "name": "English (America)", "language": "en-us", "gender": "M"} in (
        voices
    )
    with pytest.raises(errors.ValidationFailed) as exc:
        voices_of(backend=registry.get("stt", "pocketsphinx"), values={})
    assert exc.value.code == "unsupported_provider"


def test_speech_body_whole_wav_raw_pcm_stream_and_wav_stream():
    def speech() -> Speech:
        return Speech("fake", 8000, iter([b"\x01\x00", b"\x02\x00"]))

    whole = speech_body(speech=speech(), stream=False, as_wav=False)
    assert whole.content_type == "audio/wav"
    assert whole.content == wav_encode(b"\x01\x00\x02\x00", 8000)
    assert whole.headers == {
        "X-Sample-Rate": "8000",
        "X-Voice-Provider": "fake",
        "Cache-Control": "no-store",
    }
    raw = speech_body(speech=speech(), stream=True, as_wav=False)
    assert raw.content_type == "audio/L16;rate=8000;channels=1"
    assert raw.headers["X-Audio-Encoding"] == "pcm_s16le"
    assert not isinstance(raw.content, bytes)
    assert b"".join(raw.content) == b"\x01\x00\x02\x00"
    wav = speech_body(speech=speech(), stream=True, as_wav=True)
    assert not isinstance(wav.content, bytes)
    streamed = b"".join(wav.content)
    assert wav.content_type == "audio/wav" and streamed[:4] == b"RIFF"
    assert wav_decode(streamed).data == b"\x01\x00\x02\x00"


def test_speech_body_stream_ends_early_on_a_later_failure_and_whole_raises_it():
    with audio_server("second_fails") as server:
        backend, values = _openai(server)
        streamed = speech_start(backend=backend, values=values, pieces=["One.", "Two."])
        body = speech_body(speech=streamed, stream=True, as_wav=False)
        assert not isinstance(body.content, bytes)
        assert b"".join(body.content) == PROVIDER_PCM  # the stream ends, nothing is raised
    with audio_server("second_fails") as server:
        backend, values = _openai(server)
        whole = speech_start(backend=backend, values=values, pieces=["One.", "Two."])
        with pytest.raises(errors.CortexError):
            speech_body(speech=whole, stream=False, as_wav=False)
