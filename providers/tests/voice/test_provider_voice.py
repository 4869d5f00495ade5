"""OpenAI-compatible and Gemini audio against loopback servers that speak their protocols."""

from __future__ import annotations

import array
import base64
import logging
import math
import struct

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile

from preferences.models import Scope
from providers.audio import wav_encode
from providers.tests.voice.encode import encode_pcm
from providers.tests.voice.servers import PROVIDER_PCM, TRANSCRIPT, audio_server

pytestmark = pytest.mark.django_db

KEY = "sk-voice-secret-0123456789"
#: Half a second of a 440 Hz tone as a real MP3 file.
MP3 = encode_pcm(
    array.array("h", (int(8000 * math.sin(i / 8)) for i in range(8000))).tobytes(), 16000, "mp3"
)


def openai_tts(set_layer, user, server, **extra):  # type: ignore[no-untyped-def]
    data = {"provider": "openai_compatible", "base_url": f"{server.url}/v1", "api_key": KEY}
    return set_layer(Scope.USER, "tts", {**data, **extra}, user=user)


def gemini(set_layer, user, server, kind):  # type: ignore[no-untyped-def]
    data = {"provider": "gemini", "base_url": server.url, "api_key": KEY}
    return set_layer(Scope.USER, kind, data, user=user)


def transcribe(client, data: bytes, name: str = "a.wav", **fields):  # type: ignore[no-untyped-def]
    body = {"file": SimpleUploadedFile(name, data), **fields}
    return client.post("/api/v1/stt/transcribe/", body, format="multipart")


def test_openai_speech_whole_and_streamed(user_client, user, set_layer):
    with audio_server() as server:
        openai_tts(set_layer, user, server, voice="nova")
        whole = user_client.post("/api/v1/speech/", {"text": "Hello there."}, format="json")
        streamed = user_client.post(
            "/api/v1/speech/?stream=true", {"text": "One. Two."}, format="json"
        )
        body = b"".join(streamed.streaming_content)
    assert whole.status_code == 200
    assert (whole["Content-Type"], whole["X-Sample-Rate"]) == ("audio/wav", "24000")
    assert whole.content == wav_encode(PROVIDER_PCM, 24000)
    assert streamed["Content-Type"] == "audio/L16;rate=24000;channels=1"
    assert body == PROVIDER_PCM * 2  # one provider call per sentence
    first = server.requests[0]
    assert first["path"] == "/v1/audio/speech"
    assert first["headers"]["authorization"] == f"Bearer {KEY}"
    assert first["body"] == {
        "model": "gpt-4o-mini-tts",
        "voice": "nova",
        "input": "Hello there.",
        "response_format": "pcm",
    }
    assert [r["body"]["input"] for r in server.requests[1:]] == ["One.", "Two."]


def test_openai_transcription(user_client, user, set_layer):
    audio = wav_encode(b"\x01\x00" * 8000, 16000)
    with audio_server() as server:
        data = {"provider": "openai_compatible", "base_url": f"{server.url}/v1", "api_key": KEY}
        set_layer(Scope.USER, "stt", data, user=user)
        response = transcribe(user_client, audio, language="en", phrases=["open the door"])
    assert response.status_code == 200
    assert response.json() == {
        "text": TRANSCRIPT,
        "provider": "openai_compatible",
        "duration_ms": 500,
        "format": "wav",
    }
    (request,) = server.requests
    assert request["path"] == "/v1/audio/transcriptions"
    parts = request["body"]
    assert parts["file"]["data"] == audio
    assert (parts["file"]["filename"], parts["file"]["content_type"]) == ("audio.wav", "audio/wav")
    assert parts["model"]["data"] == b"whisper-1"
    assert parts["language"]["data"] == b"en"
    assert parts["prompt"]["data"] == b"open the door"


def test_gemini_speech(user_client, user, set_layer):
    with audio_server() as server:
        gemini(set_layer, user, server, "tts")
        response = user_client.post(
            "/api/v1/speech/?stream=true&as_wav=true",
            {"text": "Hi.", "voice": "Puck"},
            format="json",
        )
        body = b"".join(response.streaming_content)
    assert response["Content-Type"] == "audio/wav"
    assert response["X-Sample-Rate"] == "24000"
    assert body[:4] == b"RIFF" and struct.unpack_from("<I", body, 24)[0] == 24000
    assert body[44:] == PROVIDER_PCM
    (request,) = server.requests
    assert request["path"] == "/v1beta/models/gemini-2.5-flash-preview-tts:generateContent"
    assert request["headers"]["x-goog-api-key"] == KEY
    assert request["body"]["contents"] == [{"role": "user", "parts": [{"text": "Hi."}]}]
    assert request["body"]["generationConfig"] == {
        "responseModalities": ["AUDIO"],
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}},
    }


def test_gemini_gets_the_mp3_as_sent(user_client, user, set_layer):
    with audio_server() as server:
        gemini(set_layer, user, server, "stt")
        response = transcribe(user_client, MP3, name="voice.bin")
    assert response.status_code == 200
    assert response.json() == {
        "text": TRANSCRIPT,
        "provider": "gemini",
        "duration_ms": 500,
        "format": "mp3",
    }
    (request,) = server.requests
    assert request["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    parts = request["body"]["contents"][0]["parts"]
    assert parts[1] == {
        "inlineData": {"mimeType": "audio/mpeg", "data": base64.b64encode(MP3).decode()}
    }


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("unauthorized", 502, "invalid_key"),
        ("rate_limited", 429, "rate_limited"),
        ("error", 503, "provider_unavailable"),
    ],
)
def test_openai_failures_map_to_chat_codes_without_the_key(
    user_client, user, set_layer, caplog, mode, status, code
):
    caplog.set_level(logging.DEBUG)
    with audio_server(mode) as server:
        openai_tts(set_layer, user, server)
        response = user_client.post(
            "/api/v1/speech/?stream=true", {"text": "Secret words here."}, format="json"
        )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert KEY not in response.content.decode()
    assert KEY not in caplog.text
    assert "Secret words" not in caplog.text
    if mode == "rate_limited":
        assert response["Retry-After"] == "7"


def test_gemini_bad_key_and_timeout(user_client, user, set_layer, settings):
    with audio_server("bad_key_400") as server:
        gemini(set_layer, user, server, "stt")
        refused = transcribe(user_client, wav_encode(b"\x00\x00" * 100, 16000))
    assert refused.status_code == 502
    assert refused.json()["error"]["code"] == "invalid_key"
    assert KEY not in refused.content.decode()

    settings.VOICE_PROVIDER_TIMEOUT = 0.5
    with audio_server("hang") as server:
        gemini(set_layer, user, server, "tts")
        late = user_client.post("/api/v1/speech/", {"text": "Hi."}, format="json")
    assert late.status_code == 504
    assert late.json()["error"]["code"] == "provider_timeout"


def test_one_off_provider_and_group_limits(user_client, user, set_layer):
    with audio_server() as server:
        openai_tts(set_layer, user, server)
        local = user_client.post(
            "/api/v1/speech/?provider_name=espeak", {"text": "Hi."}, format="json"
        )
        assert (local.status_code, local["X-Voice-Provider"]) == (200, "espeak")
        assert local["X-Sample-Rate"] == "22050"
        assert server.requests == []

        group = Group.objects.create(name="local-only")
        user.groups.add(group)
        set_layer(Scope.GROUP, "tts", {"allowed_providers": ["espeak"]}, group=group)
        refused = user_client.post(
            "/api/v1/speech/?provider_name=openai_compatible", {"text": "Hi."}, format="json"
        )
        unknown = user_client.post(
            "/api/v1/speech/?provider_name=nope", {"text": "Hi."}, format="json"
        )
        voices = user_client.get("/api/v1/speech/voices/?provider=openai_compatible")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "provider_not_allowed"
    assert unknown.json()["error"]["code"] == "unknown_provider"
    assert voices.json()["error"]["code"] == "provider_not_allowed"
    assert server.requests == []


def test_fixed_voice_lists(user_client):
    openai = user_client.get("/api/v1/speech/voices/?provider=openai_compatible").json()
    assert openai["provider"] == "openai_compatible"
    assert {"id": "alloy", "name": "Alloy", "language": "", "gender": ""} in openai["voices"]
    google = user_client.get("/api/v1/speech/voices/?provider=gemini").json()
    assert google["provider"] == "gemini"
    assert {"id": "Kore", "name": "Kore", "language": "", "gender": ""} in google["voices"]
    assert len(google["voices"]) == 30


def test_a_failure_mid_stream_ends_the_stream_and_is_logged_without_secrets(
    user_client, user, set_layer, caplog
):
    caplog.set_level(logging.DEBUG)
    with audio_server("second_fails") as server:
        openai_tts(set_layer, user, server)
        response = user_client.post(
            "/api/v1/speech/?stream=true", {"text": "First part. Second part."}, format="json"
        )
        body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert body == PROVIDER_PCM
    assert len(server.requests) == 2
    assert "speech stream ended early: provider=openai_compatible code=provider_unavailable" in (
        caplog.text
    )
    assert KEY not in caplog.text
    assert "Second part" not in caplog.text
