"""providers.services.transcription called directly: upload checks, decoding, loopback provider."""

from __future__ import annotations

import array
import math

import pytest
from django.test import override_settings

from cortex import errors
from providers.audio import wav_encode
from providers.base import Backend
from providers.errors import AudioTooLong, EmptyFile, FileTooLarge, UnsupportedMediaType
from providers.registry import registry
from providers.services.transcription import (
    MULTIPART_SLACK,
    Transcript,
    check_upload_size,
    transcription_run,
    upload_format,
    upload_length_check,
)
from providers.tests.voice.encode import encode_pcm
from providers.tests.voice.servers import TRANSCRIPT, audio_server

KEY = "sk-voice-secret-0123456789"
#: One second of a tone at 16 kHz.
TONE = array.array("h", (int(8000 * math.sin(i / 8)) for i in range(16000))).tobytes()


def _openai(server) -> tuple[Backend, dict[str, str]]:  # type: ignore[no-untyped-def]
    values = {"base_url": f"{server.url}/v1", "api_key": KEY, "model": "whisper-1"}
    return registry.get("stt", "openai_compatible"), values


@override_settings(VOICE_MAX_UPLOAD_BYTES=100)
def test_check_upload_size_refuses_empty_and_too_large():
    check_upload_size(1)
    check_upload_size(100)
    with pytest.raises(EmptyFile) as empty:
        check_upload_size(0)
    assert empty.value.code == "empty_file"
    with pytest.raises(FileTooLarge) as large:
        check_upload_size(101)
    assert large.value.code == "file_too_large"


@override_settings(VOICE_MAX_UPLOAD_BYTES=100)
def test_upload_length_check_allows_the_multipart_envelope_only():
    upload_length_check(100 + MULTIPART_SLACK)
    with pytest.raises(FileTooLarge):
        upload_length_check(101 + MULTIPART_SLACK)


def test_upload_format_reads_magic_bytes_not_names():
    assert upload_format(wav_encode(TONE, 16000)) == "wav"
    assert upload_format(encode_pcm(TONE, 16000, "mp3")) == "mp3"
    assert upload_format(encode_pcm(TONE, 16000, "ogg_opus")) == "ogg"
    with pytest.raises(UnsupportedMediaType) as exc:
        upload_format(b"<html>not audio</html>")
    assert exc.value.code == "unsupported_media_type"
    with pytest.raises(EmptyFile):
        upload_format(b"")


def test_transcription_run_sends_wav_as_is_and_measures_it():
    data = wav_encode(TONE, 16000)
    with audio_server() as server:
        backend, values = _openai(server)
        heard = transcription_run(backend=backend, values=values, data=data, fmt="wav", actor_id=3)
    assert heard == Transcript(
        text=TRANSCRIPT, provider="openai_compatible", duration_ms=1000, format="wav"
    )
    assert server.requests[0]["path"] == "/v1/audio/transcriptions"


def test_transcription_run_decodes_compressed_audio_before_the_provider_sees_it():
    data = encode_pcm(TONE, 16000, "mp3")
    with audio_server() as server:
        backend, values = _openai(server)
        heard = transcription_run(backend=backend, values=values, data=data, fmt="mp3")
        assert heard.format == "mp3" and 900 <= heard.duration_ms <= 1200
        with pytest.raises(errors.ValidationFailed) as damaged:
            transcription_run(backend=backend, values=values, data=data[:200], fmt="mp3")
    assert damaged.value.code == "undecodable_audio"
    assert len(server.requests) == 1


@override_settings(VOICE_MAX_AUDIO_SECONDS=1)
def test_transcription_run_refuses_long_audio_without_calling_the_provider():
    with audio_server() as server:
        backend, values = _openai(server)
        for data, fmt in (
            (wav_encode(TONE * 2, 16000), "wav"),
            (encode_pcm(TONE * 2, 16000, "mp3"), "mp3"),
        ):
            with pytest.raises(AudioTooLong) as exc:
                transcription_run(backend=backend, values=values, data=data, fmt=fmt)
            assert exc.value.code == "audio_too_long"
    assert server.requests == []


def test_transcription_run_maps_provider_failures_and_refuses_non_stt_backends():
    data = wav_encode(TONE, 16000)
    with audio_server("error") as server:
        backend, values = _openai(server)
        with pytest.raises(errors.CortexError) as failed:
            transcription_run(backend=backend, values=values, data=data, fmt="wav")
    assert failed.value.code == "provider_unavailable"
    assert KEY not in str(failed.value.message)
    with pytest.raises(errors.ValidationFailed) as wrong_kind:
        transcription_run(backend=registry.get("tts", "espeak"), values={}, data=data, fmt="wav")
    assert wrong_kind.value.code == "unsupported_provider"
