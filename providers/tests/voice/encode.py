"""Encode test speech into compressed formats with PyAV, as a browser or phone would send it."""

from __future__ import annotations

import io
from typing import Any

import av

#: name -> (container, codec, codec sample rate, channel layout, codec options)
ENCODINGS: dict[str, tuple[str, str, int, str, dict[str, str]]] = {
    "ogg_opus": ("ogg", "libopus", 48000, "mono", {}),
    # FFmpeg's own Vorbis encoder is marked experimental and writes stereo only.
    "ogg_vorbis": ("ogg", "vorbis", 44100, "stereo", {"strict": "experimental"}),
    "mp3": ("mp3", "libmp3lame", 22050, "mono", {}),
    "webm_opus": ("webm", "libopus", 48000, "mono", {}),
}


def encode_pcm(pcm: bytes, rate: int, encoding: str) -> bytes:
    """16-bit mono PCM at `rate` as a complete file in `encoding` (a key of ENCODINGS)."""
    fmt, codec, codec_rate, layout, options = ENCODINGS[encoding]
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as container:
        # An audio codec's stream (the stubs return any kind of stream for a codec name).
        stream: Any = container.add_stream(codec, rate=codec_rate, layout=layout, options=options)
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm[: len(pcm) // 2 * 2])
        frame.sample_rate = rate
        resampler = av.AudioResampler(
            format=stream.codec_context.format,
            layout=layout,
            rate=codec_rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        for piece in resampler.resample(frame) + resampler.resample(None):
            container.mux(stream.encode(piece))
        container.mux(stream.encode(None))
    return out.getvalue()
