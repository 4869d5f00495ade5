"""Spoken chat messages: real espeak-ng audio, real pocketsphinx, the scripted LLM on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from cortex.testing import wait_until
from providers.audio import wav_decode, wav_encode
from providers.tests.llm_server import openai_text
from providers.tests.voice.encode import encode_pcm
from sessions_app.models import ChatSession, Message
from sessions_app.tests.conftest import configure_llm

pytestmark = pytest.mark.django_db(transaction=True)

PHRASES = "hello world,open the door,turn on the light,close the window"


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Recordings go to a fresh storage root; throttle counters start at zero."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    cache.clear()
    yield tmp_path / "media"
    cache.clear()


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def spoken_pcm(client: Any, text: str) -> tuple[bytes, int]:
    response = client.post("/api/v1/speech/", {"text": text, "voice": "en-us"}, format="json")
    assert response.status_code == 200
    pcm = wav_decode(response.content)
    return pcm.data, pcm.rate


def post_audio(client: Any, session_id: int, data: bytes, **fields: Any) -> Any:
    body = {"audio": SimpleUploadedFile("clip.webm", data), **fields}
    return client.post(f"/api/v1/sessions/{session_id}/messages/", body, format="multipart")


def finished(message_id: int) -> Message | None:
    message = Message.objects.get(pk=message_id)
    return message if message.status not in ("pending", "streaming") else None


def new_session(client: Any) -> int:
    return int(client.post("/api/v1/sessions/", {}, format="json").json()["id"])


def test_spoken_message_is_transcribed_kept_and_answered(
    user, user_client, llm_server, fast_turns, media
):
    configure_llm(user, llm_server)
    llm_server.add(openai_text(["Opening ", "it now."]))
    sid = new_session(user_client)
    pcm, rate = spoken_pcm(user_client, "Open the door.")
    ogg = encode_pcm(pcm, rate, "ogg_opus")

    posted = post_audio(user_client, sid, ogg, phrases=PHRASES)
    assert posted.status_code == 202, posted.json()
    ids = posted.json()
    assistant = wait_until(lambda: finished(ids["assistant_message_id"]))
    assert (assistant.status, assistant.content) == ("done", "Opening it now.")
    # The model got the transcript as the user's words.
    assert llm_server.requests[0]["body"]["messages"][1:] == [
        {"role": "user", "content": "open the door"}
    ]
    user_message = Message.objects.get(pk=ids["user_message_id"])
    assert user_message.content == "open the door"
    spoken_ms = len(pcm) // 2 * 1000 // rate
    assert spoken_ms - 30 <= user_message.audio_duration_ms <= spoken_ms + 120
    assert ChatSession.objects.get(pk=sid).title == "open the door"
    (stored,) = stored_files(media)
    assert stored.suffix == ".ogg" and stored.read_bytes() == ogg

    listing = user_client.get(f"/api/v1/sessions/{sid}/messages/").json()
    shapes = [(m["role"], m["has_audio"], m["audio_duration_ms"]) for m in listing["results"]]
    assert shapes == [
        ("user", True, user_message.audio_duration_ms),
        ("assistant", False, None),
    ]
    assert str(media) not in str(listing) and stored.name not in str(listing)
    assert "audio" not in listing["results"][0]

    audio = user_client.get(f"/api/v1/sessions/{sid}/messages/{ids['user_message_id']}/audio/")
    assert audio.status_code == 200
    assert audio["Content-Type"] == "audio/ogg"
    assert b"".join(audio.streaming_content) == ogg


def test_answer_is_spoken_and_heard_back(user, user_client, llm_server, fast_turns):
    configure_llm(user, llm_server)
    llm_server.add(openai_text(["Turn on ", "the light."]))
    sid = new_session(user_client)
    posted = user_client.post(
        f"/api/v1/sessions/{sid}/messages/", {"content": "What now?"}, format="multipart"
    )
    assert posted.status_code == 202, posted.json()
    ids = posted.json()
    wait_until(lambda: finished(ids["assistant_message_id"]))
    assert Message.objects.get(pk=ids["user_message_id"]).audio.name == ""

    base = f"/api/v1/sessions/{sid}/messages"
    spoken = user_client.post(f"{base}/{ids['assistant_message_id']}/speech/?voice=en-us")
    assert spoken.status_code == 200
    assert (spoken["Content-Type"], spoken["X-Voice-Provider"]) == ("audio/wav", "espeak")
    body = {"file": SimpleUploadedFile("a.wav", spoken.content), "phrases": PHRASES}
    heard = user_client.post("/api/v1/stt/transcribe/", body, format="multipart")
    assert heard.json()["text"] == "turn on the light"

    streamed = user_client.post(
        f"{base}/{ids['assistant_message_id']}/speech/?stream=true&as_wav=true"
    )
    assert streamed["Content-Type"] == "audio/wav"
    assert len(b"".join(streamed.streaming_content)) > 44 + 22050

    refused = user_client.post(f"{base}/{ids['user_message_id']}/speech/")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "not_speakable"
    assert user_client.get(f"{base}/{ids['user_message_id']}/audio/").json()["error"] == {
        "code": "no_audio",
        "message": "This message has no recording.",
    }


def test_other_users_get_404_for_audio_and_speech(user, user_client, make_user, media):
    other = make_user("eve@example.com")
    theirs = ChatSession.objects.create(owner=other)
    recording = wav_encode(b"\x00\x01" * 1600, 16000)
    from providers.services.storage import audio_save

    name = audio_save(user=other, data=recording)
    spoken = Message.objects.create(session=theirs, role="user", content="hi", audio=name)
    answer = Message.objects.create(session=theirs, role="assistant", content="Hello there.")
    mine = new_session(user_client)
    for path in (
        f"/api/v1/sessions/{theirs.pk}/messages/{spoken.pk}/audio/",
        f"/api/v1/sessions/{mine}/messages/{spoken.pk}/audio/",
        f"/api/v1/sessions/{mine}/messages/999999/audio/",
    ):
        response = user_client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    for path in (
        f"/api/v1/sessions/{theirs.pk}/messages/{answer.pk}/speech/",
        f"/api/v1/sessions/{mine}/messages/{answer.pk}/speech/",
    ):
        assert user_client.post(path).status_code == 404, path


def test_refused_recordings_store_nothing_and_start_no_turn(
    user, user_client, llm_server, fast_turns, media
):
    configure_llm(user, llm_server)
    sid = new_session(user_client)
    pcm, rate = spoken_pcm(user_client, "Open the door.")
    ogg = encode_pcm(pcm, rate, "ogg_opus")

    cut = post_audio(user_client, sid, ogg[:120])
    assert cut.status_code == 400
    assert cut.json()["error"]["code"] == "undecodable_audio"
    png = post_audio(user_client, sid, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert png.status_code == 415
    assert png.json()["error"]["code"] == "unsupported_media_type"
    empty = post_audio(user_client, sid, b"")
    assert (empty.status_code, empty.json()["error"]["code"]) == (400, "empty_file")
    both = post_audio(user_client, sid, ogg, content="typed too")
    assert both.status_code == 400
    assert list(both.json()["error"]["fields"]) == ["content"]
    neither = user_client.post(
        f"/api/v1/sessions/{sid}/messages/", {"language": "en"}, format="multipart"
    )
    assert neither.status_code == 400
    assert list(neither.json()["error"]["fields"]) == ["content"]

    silence = post_audio(user_client, sid, wav_encode(b"\x00\x00" * 16000, 16000), phrases=PHRASES)
    assert silence.status_code == 400
    assert silence.json()["error"] == {
        "code": "nothing_heard",
        "message": "No words were heard in the recording; nothing was posted.",
    }

    assert not Message.objects.filter(session_id=sid).exists()
    assert stored_files(media) == []
    assert llm_server.requests == []


def test_too_long_and_busy_sessions_are_refused_before_storing(user, user_client, settings, media):
    sid = new_session(user_client)
    settings.VOICE_MAX_AUDIO_SECONDS = 1
    long_mp3 = encode_pcm(b"\x00\x00" * 16000 * 3, 16000, "mp3")
    too_long = post_audio(user_client, sid, long_mp3)
    assert too_long.status_code == 413
    assert too_long.json()["error"]["code"] == "audio_too_long"

    settings.VOICE_MAX_AUDIO_SECONDS = 300
    Message.objects.create(session_id=sid, role="assistant", status="streaming")
    busy = post_audio(user_client, sid, long_mp3)
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "turn_in_progress"
    assert Message.objects.filter(session_id=sid).count() == 1
    assert stored_files(media) == []


def test_deleting_a_session_removes_its_recordings(
    user, user_client, llm_server, fast_turns, media
):
    configure_llm(user, llm_server)
    llm_server.add(openai_text(["ok"]))
    sid = new_session(user_client)
    pcm, rate = spoken_pcm(user_client, "Hello world.")
    posted = post_audio(user_client, sid, encode_pcm(pcm, rate, "webm_opus"), phrases=PHRASES)
    assert posted.status_code == 202
    wait_until(lambda: finished(posted.json()["assistant_message_id"]))
    (stored,) = stored_files(media)
    assert stored.suffix == ".webm"
    assert Message.objects.get(pk=posted.json()["user_message_id"]).content == "hello world"
    assert user_client.delete(f"/api/v1/sessions/{sid}/").status_code == 204
    assert stored_files(media) == []


def test_voice_rates_apply_to_spoken_messages_and_answers(user, user_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"speech": "1/min", "transcribe": "1/min"},
    }
    session = ChatSession.objects.create(owner=user)
    answer = Message.objects.create(session=session, role="assistant", content="Hello world.")
    base = f"/api/v1/sessions/{session.pk}/messages"
    assert user_client.post(f"{base}/{answer.pk}/speech/").status_code == 200
    throttled = user_client.post(f"{base}/{answer.pk}/speech/")
    assert (throttled.status_code, throttled.json()["error"]["code"]) == (429, "throttled")
    assert post_audio(user_client, session.pk, b"").status_code == 400
    assert post_audio(user_client, session.pk, b"").status_code == 429
    # Reading messages and plain JSON posts are not counted against the voice rates.
    assert user_client.get(f"{base}/").status_code == 200
    assert Message.objects.filter(session=session).count() == 1
