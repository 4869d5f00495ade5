"""Input and output serializers of the voice endpoints (the preferences and sessions APIs)."""

from __future__ import annotations

from rest_framework import serializers

from preferences.voice.limits import DEFAULT_MAX_TEXT_CHARS

PROVIDER_HELP = "One-off provider for this call; must be one your groups allow."


class SpeechInput(serializers.Serializer):
    text = serializers.CharField(
        help_text=f"What to say (at most {DEFAULT_MAX_TEXT_CHARS} characters by default; "
        "CORTEX_VOICE_MAX_TEXT_CHARS).",
    )
    voice = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Voice id; see speech/voices/."
    )


class SpeechQuery(serializers.Serializer):
    stream = serializers.BooleanField(
        required=False, default=False, help_text="Send audio in chunks as it is produced."
    )
    as_wav = serializers.BooleanField(
        required=False,
        default=False,
        help_text="With stream: a WAV stream instead of raw 16-bit PCM. Whole answers are WAV.",
    )
    provider_name = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text=PROVIDER_HELP
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


class PhrasesField(serializers.ListField):
    """Phrases as repeated form fields, or one field with phrases separated by commas."""

    child = serializers.CharField(max_length=200)

    def get_value(self, dictionary):  # type: ignore[no-untyped-def]
        value = super().get_value(dictionary)
        if isinstance(value, list) and len(value) == 1 and "," in value[0]:
            return [p.strip() for p in value[0].split(",") if p.strip()]
        return value


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
