"""Format sniffing, WAV helpers, sentence splitting, storage and local decoder input checks."""

from __future__ import annotations

import struct

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from providers import errors
from providers.audio import (
    resample,
    sniff_format,
    split_sentences,
    wav_decode,
    wav_duration_ms,
    wav_encode,
    wav_header,
)
from providers.services.storage import audio_save


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"ID3\x04\x00", "mp3"),
        (b"\xff\xfb\x90\x00", "mp3"),
        (b"\xff\xf3\x90\x00", "mp3"),
        (b"OggS\x00\x02", "ogg"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "webm"),
    ],
)
def test_accepted_formats_are_sniffed_from_bytes(head, fmt):
    assert sniff_format(head) == fmt


@pytest.mark.parametrize(
    "head",
    [
        b"\x89PNG\r\n\x1a\n",
        b"%PDF-1.7",
        b"\xff\xf1\x50\x80",  # AAC in ADTS: MPEG sync bits but layer 0
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska",
        b"RIFF\x00\x00\x00\x00AVI ",
        b"",
    ],
)
def test_other_bytes_are_refused(head):
    with pytest.raises(errors.UnsupportedMediaType) as caught:
        sniff_format(head)
    assert caught.value.code == "unsupported_media_type"
    assert "WAV, MP3, OGG or WebM" in caught.value.message


def test_wav_decoding_of_8_and_24_bit():
    header = bytearray(wav_header(8000, 4))
    struct.pack_into("<HHIIHH", header, 20, 1, 1, 8000, 8000, 1, 8)
    eight = wav_decode(bytes(header) + bytes([128, 255, 0, 128]))
    assert struct.unpack("<4h", eight.data) == (0, 127 << 8, -128 << 8, 0)

    header = bytearray(wav_header(8000, 6))
    struct.pack_into("<HHIIHH", header, 20, 1, 1, 8000, 24000, 3, 24)
    wide = wav_decode(bytes(header) + b"\x00\x00\x40" + b"\xff\xff\xff")
    assert struct.unpack("<2h", wide.data) == (0x4000, -1)


def test_float_wav_is_refused():
    header = bytearray(wav_header(8000, 8))
    struct.pack_into("<HHIIHH", header, 20, 3, 1, 8000, 32000, 4, 32)
    with pytest.raises(errors.UnsupportedMediaType):
        wav_decode(bytes(header) + b"\x00" * 8)


def test_streamed_wav_header_is_clamped_to_the_bytes_present():
    streamed = wav_header(22050) + b"\x01\x00" * 22050
    assert wav_duration_ms(streamed) == 1000
    assert len(wav_decode(streamed).data) == 44100


def test_resample_lengths_and_identity():
    pcm = struct.pack("<4h", 0, 100, 200, 300)
    assert resample(pcm, 16000, 16000) == pcm
    assert struct.unpack("<8h", resample(pcm, 8000, 16000)) == (0, 50, 100, 150, 200, 250, 300, 300)
    assert len(resample(b"\x00\x00" * 22050, 22050, 16000)) == 32000


def test_sentences_are_split_and_long_ones_cut_at_spaces():
    assert split_sentences("One. Two!  Three?\n\nFour") == ["One.", "Two!", "Three?", "Four"]
    long = " ".join(["word"] * 200)
    pieces = split_sentences(long, max_chars=100)
    assert all(len(p) <= 100 for p in pieces)
    assert " ".join(pieces) == long
    assert split_sentences("  \n ") == []


@pytest.mark.django_db
def test_audio_is_stored_through_the_storage_api(user, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    data = wav_encode(b"\x00\x00" * 10, 16000)
    name = audio_save(user=user, data=data)
    assert name.startswith(f"voice/{user.pk}/") and name.endswith(".wav")
    with default_storage.open(name) as stored:
        assert stored.read() == data


@pytest.mark.django_db
def test_local_decoder_is_english_only(user_client):
    audio = wav_encode(b"\x00\x00" * 1600, 16000)
    body = {"file": SimpleUploadedFile("a.wav", audio), "language": "de"}
    response = user_client.post("/api/v1/stt/transcribe/", body, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_language"


@pytest.mark.django_db
def test_unknown_phrase_words_are_refused(user_client):
    audio = wav_encode(b"\x00\x00" * 1600, 16000)
    body = {"file": SimpleUploadedFile("a.wav", audio), "phrases": "hello world,xyzzyq plugh"}
    response = user_client.post("/api/v1/stt/transcribe/", body, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"phrases": ["Unknown words: plugh, xyzzyq."]}
