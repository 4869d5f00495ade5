"""Input and output serializers of the voice endpoints (shared pieces: cortex.api.voice)."""

from __future__ import annotations

from rest_framework import serializers

from cortex.api.voice import PROVIDER_HELP, PhrasesField, SpeechQuery
from providers.limits import DEFAULT_MAX_TEXT_CHARS


class SpeechInput(serializers.Serializer):
    text = serializers.CharField(
        help_text=f"What to say (at most {DEFAULT_MAX_TEXT_CHARS} characters by default; "
        "CORTEX_VOICE_MAX_TEXT_CHARS).",
    )
    voice = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Voice id; see speech/voices/."
    )


class VoicesQuery(serializers.Serializer):
    provider = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="tts provider id (espeak, openai_compatible, gemini); default: yours.",
    )


class VoiceOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    language = serializers.CharField(allow_blank=True)
    gender = serializers.CharField(allow_blank=True)


class VoicesOutput(serializers.Serializer):
    provider = serializers.CharField()
    voices = VoiceOutput(many=True)


class TranscribeInput(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True, help_text="WAV, MP3, OGG or WebM; the format is read from the bytes."
    )
    provider_name = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text=PROVIDER_HELP
    )
    language = serializers.CharField(
        required=False, allow_blank=True, max_length=16, help_text="Language hint, e.g. en."
    )
    phrases = PhrasesField(
        required=False,
        max_length=50,
        help_text="Expected phrases: the local decoder then hears only these; network providers "
        "get them as a hint.",
    )


class TranscriptOutput(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    provider = serializers.CharField()
    duration_ms = serializers.IntegerField(help_text="Length of the audio in milliseconds.")
    format = serializers.ChoiceField(
        choices=["wav", "mp3", "ogg", "webm"], help_text="Format read from the file's bytes."
    )


__all__ = [
    "PhrasesField",
    "SpeechInput",
    "SpeechQuery",
    "TranscribeInput",
    "TranscriptOutput",
    "VoiceOutput",
    "VoicesOutput",
    "VoicesQuery",
]
