"""Voice limits and knobs, read from settings when a call needs them (never at import)."""

from __future__ import annotations

from django.conf import settings

DEFAULT_MAX_TEXT_CHARS = 4000
DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_AUDIO_SECONDS = 300
DEFAULT_TIMEOUT = 60.0


def max_text_chars() -> int:
    return int(getattr(settings, "VOICE_MAX_TEXT_CHARS", DEFAULT_MAX_TEXT_CHARS))


def max_upload_bytes() -> int:
    return int(getattr(settings, "VOICE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES))


def max_audio_seconds() -> int:
    return int(getattr(settings, "VOICE_MAX_AUDIO_SECONDS", DEFAULT_MAX_AUDIO_SECONDS))


def provider_timeout() -> float:
    """Seconds one provider call (one spoken piece, one transcription) may take."""
    return float(getattr(settings, "VOICE_PROVIDER_TIMEOUT", DEFAULT_TIMEOUT))
