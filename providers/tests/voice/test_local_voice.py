"""Offline defaults: espeak-ng speaks and pocketsphinx listens, through the real API."""

from __future__ import annotations

import io
import struct
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from providers.audio import resample, wav_decode, wav_duration_ms, wav_encode

pytestmark = pytest.mark.django_db

PHRASES = ["hello world", "open the door", "turn on the light", "close the window"]


def speak(client, text: str, voice: str = "", **query: str):  # type: ignore[no-untyped-def]
    url = "/api/v1/speech/"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    body = {"text": text, **({"voice": voice} if voice else {})}
    return client.post(url, body, format="json")


def upload(client, data: bytes, name: str = "clip.wav", **fields):  # type: ignore[no-untyped-def]
    body = {"file": SimpleUploadedFile(name, data, content_type="audio/wav"), **fields}
    return client.post("/api/v1/stt/transcribe/", body, format="multipart")


def test_defaults_round_trip_with_nothing_configured(user_client):
    # The default espeak voice is en-us, matching pocketsphinx's shipped American English model.
    spoken = speak(user_client, "Turn on the light.")
    assert spoken.status_code == 200
    heard = upload(user_client, spoken.content, phrases=",".join(PHRASES))
    assert heard.status_code == 200, heard.json()
    assert heard.json()["text"] == "turn on the light"


def test_spoken_sentence_is_transcribed_back(user_client):
    spoken = speak(user_client, "Open the door.", voice="en-us")
    assert spoken.status_code == 200
    assert spoken["Content-Type"] == "audio/wav"
    assert spoken["X-Sample-Rate"] == "22050"
    assert spoken["X-Voice-Provider"] == "espeak"
    audio = spoken.content
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    assert struct.unpack_from("<I", audio, 40)[0] == len(audio) - 44
    assert wav_decode(audio).rate == 22050

    heard = upload(user_client, audio, phrases=",".join(PHRASES))
    assert heard.status_code == 200, heard.json()
    assert heard.json() == {
        "text": "open the door",
        "provider": "pocketsphinx",
        "duration_ms": wav_duration_ms(audio),
        "format": "wav",
    }


def test_newcomer_gets_words_from_the_full_language_model(user_client):
    text = "Hello world. This is a test of the speech system."
    audio = speak(user_client, text, voice="en-us").content
    heard = upload(user_client, audio, language="en")
    assert heard.status_code == 200
    body = heard.json()
    assert (body["provider"], body["duration_ms"]) == ("pocketsphinx", wav_duration_ms(audio))
    # The open vocabulary is rough on synthetic speech, but the words are real ones.
    assert body["text"].split()[:2] == ["hello", "world"]


def test_stereo_44k_wav_is_downmixed_and_resampled(user_client):
    pcm = wav_decode(speak(user_client, "Turn on the light.", voice="en-us").content)
    mono = resample(pcm.data, pcm.rate, 44100)
    stereo = b"".join(mono[i : i + 2] * 2 for i in range(0, len(mono), 2))
    header = bytearray(wav_encode(stereo, 44100)[:44])
    struct.pack_into("<HIIH", header, 22, 2, 44100, 44100 * 4, 4)
    heard = upload(user_client, bytes(header) + stereo, phrases=PHRASES)
    assert heard.status_code == 200
    assert heard.json()["text"] == "turn on the light"


def test_stream_sends_pcm_before_the_whole_text_is_spoken(user_client):
    text = " ".join(f"This is sentence number {n} of a long answer." for n in range(1, 25))
    started = time.monotonic()
    response = speak(user_client, text, stream="true")
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/L16;rate=22050;channels=1"
    assert response["X-Sample-Rate"] == "22050"
    chunks = iter(response.streaming_content)
    first = next(chunks)
    first_at = time.monotonic() - started
    rest = list(chunks)
    total = time.monotonic() - started
    assert first and len(first) % 2 == 0
    assert len(rest) > 10
    assert all(len(c) % 2 == 0 for c in rest)
    # 24 sentences are spoken one by one: the first chunk is out long before the last.
    assert first_at < total / 4, (first_at, total)
    audio_ms = (len(first) + sum(map(len, rest))) // 2 * 1000 // 22050
    assert audio_ms > 30_000


def test_stream_as_wav_starts_with_an_open_ended_header(user_client):
    response = speak(user_client, "One. Two. Three.", stream="true", as_wav="true")
    assert response["Content-Type"] == "audio/wav"
    body = b"".join(response.streaming_content)
    assert body[:4] == b"RIFF" and body[36:40] == b"data"
    assert struct.unpack_from("<I", body, 40)[0] == 0x7FFFF000
    assert struct.unpack_from("<I", body, 24)[0] == 22050
    assert len(body) > 44 + 22050  # more than half a second of speech


def test_png_renamed_to_wav_is_refused(user_client):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
    response = upload(user_client, png, name="photo.wav")
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "WAV, MP3, OGG or WebM" in error["message"]


def test_empty_file_is_refused(user_client):
    response = upload(user_client, b"")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "empty_file"


def test_oversized_upload_is_refused(user_client, settings):
    settings.VOICE_MAX_UPLOAD_BYTES = 1000
    audio = wav_encode(b"\x00\x00" * 1000, 16000)
    response = upload(user_client, audio)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "file_too_large",
        "message": "The upload has 2044 bytes; the limit is 1000 bytes.",
    }


def test_oversized_body_is_refused_before_parsing(user_client, settings):
    settings.VOICE_MAX_UPLOAD_BYTES = 10
    audio = wav_encode(b"\x00\x00" * 40_000, 16000)
    response = upload(user_client, audio)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"


def test_too_long_audio_is_refused(user_client, settings):
    settings.VOICE_MAX_AUDIO_SECONDS = 1
    response = upload(user_client, wav_encode(b"\x00\x00" * 32000, 16000))
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "audio_too_long",
        "message": "The audio lasts 2.0 s; the limit is 1 s.",
    }


def test_text_too_long_is_refused(user_client, settings):
    settings.VOICE_MAX_TEXT_CHARS = 10
    response = speak(user_client, "This is more than ten characters.")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "text_too_long",
        "message": "The text has 33 characters; the limit is 10.",
    }


def test_unknown_espeak_voice(user_client):
    response = user_client.post("/api/v1/speech/", {"text": "hi", "voice": "zzqq"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_voice"
    response = user_client.post("/api/v1/speech/", {"text": "hi", "voice": "--help"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_voice"


def test_espeak_voices(user_client):
    response = user_client.get("/api/v1/speech/voices/")
    assert response.status_code == 200
    body = response.json()
    assert body["provider"] == "espeak"
    by_id = {v["id"]: v for v in body["voices"]}
    assert by_id["en-us"] == {
        "id": "en-us",
        "name": "English (America)",
        "language": "en-us",
        "gender": "M",
    }


def test_speech_is_throttled_per_user(user_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"speech": "2/min", "transcribe": "1/min"},
    }
    assert speak(user_client, "one").status_code == 200
    assert speak(user_client, "two").status_code == 200
    third = speak(user_client, "three")
    assert third.status_code == 429
    assert third.json()["error"]["code"] == "throttled"
    # Listing voices is not counted.
    assert user_client.get("/api/v1/speech/voices/").status_code == 200
    assert upload(user_client, b"").status_code == 400
    assert upload(user_client, b"").status_code == 429


def test_anonymous_callers_are_refused(anon_client):
    assert speak(anon_client, "hi").status_code == 401
    assert anon_client.get("/api/v1/speech/voices/").status_code == 401
    assert upload(anon_client, b"RIFF").status_code == 401


def test_wav_helpers_round_trip():
    pcm = struct.pack("<4h", 0, 1000, -1000, 32767)
    decoded = wav_decode(wav_encode(pcm, 8000))
    assert (decoded.data, decoded.rate, decoded.duration_ms) == (pcm, 8000, 0)
    assert io.BytesIO(wav_encode(pcm, 8000)).read(4) == b"RIFF"
