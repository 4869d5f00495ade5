"""MP3, OGG and WebM uploads are decoded in-process with PyAV for the local pocketsphinx."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from providers.audio import wav_decode, wav_encode
from providers.tests.voice.encode import encode_pcm

pytestmark = pytest.mark.django_db

PHRASES = "hello world,open the door,turn on the light,close the window"


def spoken_pcm(client, text: str) -> tuple[bytes, int]:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/speech/", {"text": text, "voice": "en-us"}, format="json")
    assert response.status_code == 200
    pcm = wav_decode(response.content)
    return pcm.data, pcm.rate


def upload(client, data: bytes, name: str, **fields):  # type: ignore[no-untyped-def]
    body = {"file": SimpleUploadedFile(name, data, content_type="audio/wav"), **fields}
    return client.post("/api/v1/stt/transcribe/", body, format="multipart")


@pytest.mark.parametrize(
    ("encoding", "fmt", "magic"),
    [
        ("ogg_opus", "ogg", b"OggS"),
        ("ogg_vorbis", "ogg", b"OggS"),
        ("mp3", "mp3", b"ID3"),
        ("webm_opus", "webm", b"\x1a\x45\xdf\xa3"),
    ],
)
def test_compressed_speech_is_transcribed(user_client, encoding, fmt, magic):
    pcm, rate = spoken_pcm(user_client, "Close the window.")
    data = encode_pcm(pcm, rate, encoding)
    assert data.startswith(magic)
    # The name lies; the format comes from the bytes.
    response = upload(user_client, data, "clip.wav", phrases=PHRASES)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["text"], body["provider"], body["format"]) == (
        "close the window",
        "pocketsphinx",
        fmt,
    )
    spoken_ms = len(pcm) // 2 * 1000 // rate
    # Codec padding and priming add a few tens of milliseconds at most.
    assert spoken_ms - 30 <= body["duration_ms"] <= spoken_ms + 120, (body, spoken_ms)


def test_each_phrase_comes_back_from_opus(user_client):
    for phrase in ("Hello world.", "Open the door.", "Turn on the light."):
        pcm, rate = spoken_pcm(user_client, phrase)
        response = upload(user_client, encode_pcm(pcm, rate, "ogg_opus"), "a.ogg", phrases=PHRASES)
        assert response.status_code == 200
        assert response.json()["text"] == phrase.rstrip(".").lower()


def test_truncated_ogg_is_refused_cleanly(user_client):
    pcm, rate = spoken_pcm(user_client, "Open the door.")
    data = encode_pcm(pcm, rate, "ogg_opus")
    response = upload(user_client, data[:120], "cut.ogg")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "undecodable_audio",
        "message": "The OGG audio could not be decoded; the file may be damaged or cut short.",
    }


def test_corrupt_ogg_is_refused_cleanly(user_client):
    pcm, rate = spoken_pcm(user_client, "Open the door.")
    data = encode_pcm(pcm, rate, "ogg_opus")
    garbled = data[:4] + bytes(b ^ 0x5A for b in data[4:])
    response = upload(user_client, garbled, "bad.ogg")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "undecodable_audio"


def test_ogg_page_with_no_sound_is_refused(user_client):
    response = upload(user_client, b"OggS\x00\x02" + b"\x00" * 100, "empty.ogg")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "undecodable_audio"


def test_long_compressed_audio_stops_at_the_limit(user_client, settings):
    settings.VOICE_MAX_AUDIO_SECONDS = 1
    silence = b"\x00\x00" * 16000 * 3
    response = upload(user_client, encode_pcm(silence, 16000, "mp3"), "long.mp3")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "audio_too_long"
    assert error["message"].endswith("; the limit is 1 s.")
    assert error["message"].startswith("The audio lasts 3.")


def test_wav_still_needs_no_decoder(user_client):
    pcm, rate = spoken_pcm(user_client, "Turn on the light.")
    response = upload(user_client, wav_encode(pcm, rate), "a.wav", phrases=PHRASES)
    assert response.status_code == 200
    assert response.json()["text"] == "turn on the light"
