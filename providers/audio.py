"""Audio helpers with no dependencies: format sniffing, WAV read/write, PCM resampling.

Every PCM buffer here is signed 16-bit little-endian mono unless a name says otherwise.
"""

from __future__ import annotations

import array
import re
import struct
import sys
from dataclasses import dataclass

from providers.errors import UnsupportedMediaType

#: Formats accepted for transcription, by sniffed name, with their MIME types.
ACCEPTED_FORMATS = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
}
ACCEPTED_TEXT = "WAV, MP3, OGG or WebM"
#: The WAV header written in front of a stream whose length is unknown (as espeak-ng does).
STREAM_DATA_SIZE = 0x7FFFF000
PCM_WIDTH = 2


def sniff_format(head: bytes) -> str:
    """The audio format named by the magic bytes (never by a file name); raises if not accepted."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3":
        return "mp3"
    # An MPEG audio frame: 11 sync bits, then a version and a layer that are not "reserved".
    if (
        len(head) >= 2
        and head[0] == 0xFF
        and head[1] & 0xE0 == 0xE0
        and head[1] & 0x06
        and (head[1] >> 3) & 0x03 != 0x01
    ):
        return "mp3"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in head[:64]:
        return "webm"
    raise UnsupportedMediaType(
        f"The upload is not audio in an accepted format; send {ACCEPTED_TEXT} "
        "(the format is read from the file's bytes, not its name)."
    )


@dataclass(frozen=True)
class Pcm:
    """Decoded audio: 16-bit mono samples at `rate`."""

    data: bytes
    rate: int

    @property
    def duration_ms(self) -> int:
        return int(len(self.data) // PCM_WIDTH * 1000 // self.rate) if self.rate else 0


@dataclass(frozen=True)
class AudioInput:
    """An upload for transcription: the bytes as sent, their sniffed format and, if decoded, PCM."""

    data: bytes
    format: str
    pcm: Pcm | None = None

    @property
    def mime(self) -> str:
        return ACCEPTED_FORMATS[self.format]


def _chunks(data: bytes) -> dict[bytes, tuple[int, int]]:
    """{chunk id: (offset, size)} for a RIFF body; sizes are clamped to what is present."""
    found: dict[bytes, tuple[int, int]] = {}
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        start = offset + 8
        size = min(size, len(data) - start)
        found.setdefault(chunk_id, (start, size))
        offset = start + size + (size & 1)
    return found


def wav_info(data: bytes) -> tuple[int, int, int, int, int]:
    """(format tag, channels, rate, bits per sample, data bytes) of a WAV file."""
    chunks = _chunks(data)
    if b"fmt " not in chunks or b"data" not in chunks:
        raise UnsupportedMediaType("The WAV file has no fmt or data chunk.")
    fmt_start, fmt_size = chunks[b"fmt "]
    if fmt_size < 16:
        raise UnsupportedMediaType("The WAV file's fmt chunk is too short.")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, fmt_start)
    if tag == 0xFFFE and fmt_size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag is in the GUID
        (tag,) = struct.unpack_from("<H", data, fmt_start + 24)
    return tag, channels, rate, bits, chunks[b"data"][1]


def wav_duration_ms(data: bytes) -> int:
    """Length of a WAV file in milliseconds, from its header and the bytes present."""
    _, channels, rate, bits, size = wav_info(data)
    frame = max(1, channels * max(1, bits // 8))
    return int(size // frame * 1000 // rate) if rate else 0


def wav_decode(data: bytes) -> Pcm:
    """Integer PCM WAV (8, 16, 24 or 32 bit, any channels) to 16-bit mono."""
    tag, channels, rate, bits, _ = wav_info(data)
    if tag != 1 or bits not in (8, 16, 24, 32) or not channels or not rate:
        raise UnsupportedMediaType(
            "Only integer PCM WAV (8, 16, 24 or 32 bit) can be decoded here; send 16-bit PCM WAV."
        )
    start, size = _chunks(data)[b"data"]
    raw = data[start : start + size]
    width = bits // 8
    raw = raw[: len(raw) // (width * channels) * (width * channels)]
    if width == 1:
        samples = array.array("h", ((b - 128) << 8 for b in raw))
    elif width == 2:
        samples = array.array("h")
        samples.frombytes(raw)
        if sys.byteorder == "big":  # pragma: no cover - little-endian hosts only in CI
            samples.byteswap()
    else:
        samples = array.array(
            "h",
            (
                int.from_bytes(raw[i + width - 2 : i + width], "little", signed=True)
                for i in range(0, len(raw), width)
            ),
        )
    if channels > 1:
        samples = array.array(
            "h",
            (sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)),
        )
    return Pcm(samples.tobytes(), rate)


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Linear-interpolation resampler (replaces the deprecated audioop.ratecv).

    No low-pass pass: a cheap one also dulls the 4-8 kHz band the speech models rely on, and
    speech carries little energy above 8 kHz to alias.
    """
    if src_rate == dst_rate or not pcm:
        return pcm
    src = array.array("h")
    src.frombytes(pcm[: len(pcm) // 2 * 2])
    count = len(src)
    total = int(count * dst_rate / src_rate)
    out = array.array("h", bytes(2 * total))
    step = src_rate / dst_rate
    last = count - 1
    for i in range(total):
        position = i * step
        j = int(position)
        s0 = src[j]
        s1 = src[j + 1] if j < last else s0
        out[i] = int(s0 + (s1 - s0) * (position - j))
    return out.tobytes()


def wav_header(rate: int, data_size: int = STREAM_DATA_SIZE) -> bytes:
    """A 44-byte 16-bit mono WAV header; the default size marks a stream of unknown length."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        min(data_size + 36, 0xFFFFFFFF),
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        rate,
        rate * PCM_WIDTH,
        PCM_WIDTH,
        16,
        b"data",
        data_size,
    )


def wav_encode(pcm: bytes, rate: int) -> bytes:
    return wav_header(rate, len(pcm)) + pcm


_SENTENCE_END = re.compile(r"(?<=[.!?;:。！？])\s+|\n\s*\n")


def split_sentences(text: str, *, max_chars: int = 400) -> list[str]:
    """Sentences (cut further at spaces when longer than max_chars), for speaking piece by piece."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut])
            sentence = sentence[cut:].lstrip()
        if sentence:
            pieces.append(sentence)
    return pieces
