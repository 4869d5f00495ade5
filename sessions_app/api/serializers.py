"""Input and output shapes of the sessions API (one serializer per direction and endpoint)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cortex.api.voice import PROVIDER_HELP, PhrasesField, SpeechQuery
from sessions_app.models import ApprovalPolicy


class LLMProviderField(serializers.ChoiceField):
    """An llm backend id the provider registry holds, or "" (the user's preferences decide).

    The choices are read from the registry whenever the field is built (DRF rebuilds declared
    fields per serializer), so a new provider package needs no change here.
    """

    def __init__(self, **kwargs: Any) -> None:
        from providers.registry import registry

        super().__init__(choices=["", *registry.ids("llm")], **kwargs)


class SessionCreateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    approval_policy = serializers.ChoiceField(choices=ApprovalPolicy.choices, required=False)
    provider = LLMProviderField(required=False, default="")
    model = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class SessionUpdateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_archived = serializers.BooleanField(required=False)
    approval_policy = serializers.ChoiceField(choices=ApprovalPolicy.choices, required=False)
    provider = LLMProviderField(required=False)
    model = serializers.CharField(max_length=200, required=False, allow_blank=True)


class SessionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    provider = serializers.CharField()
    model = serializers.CharField()
    approval_policy = serializers.CharField()
    is_archived = serializers.BooleanField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    tokens_total = serializers.SerializerMethodField()
    last_seq = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_tokens_total(self, obj: Any) -> int:
        return int(obj.tokens_in + obj.tokens_out)


class MessagePostInput(serializers.Serializer):
    content = serializers.CharField(max_length=100_000, trim_whitespace=False)

    def validate_content(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value


class MessageFormInput(serializers.Serializer):
    """Multipart: a recording (transcribed into the message) or plain `content`, not both."""

    audio = serializers.FileField(
        required=False,
        allow_empty_file=True,
        help_text="WAV, MP3, OGG or WebM, read from the bytes; its transcript becomes the message.",
    )
    content = serializers.CharField(
        max_length=100_000, required=False, allow_blank=True, trim_whitespace=False
    )
    language = serializers.CharField(
        required=False, allow_blank=True, max_length=16, help_text="Language hint, e.g. en."
    )
    phrases = PhrasesField(
        required=False,
        max_length=50,
        help_text="Expected phrases: the local decoder then hears only these.",
    )
    provider_name = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text=PROVIDER_HELP
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_text = bool((attrs.get("content") or "").strip())
        if "audio" in attrs and has_text:
            raise serializers.ValidationError(
                {"content": ["Send either content or audio, not both."]}
            )
        if "audio" not in attrs and not has_text:
            raise serializers.ValidationError({"content": ["Send content or an audio file."]})
        return attrs


class MessageSpeechQuery(SpeechQuery):
    voice = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Voice id; see speech/voices/."
    )


class MessagePostOutput(serializers.Serializer):
    user_message_id = serializers.IntegerField()
    assistant_message_id = serializers.IntegerField()


class MessageOutput(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.CharField()
    content = serializers.CharField()
    has_audio = serializers.SerializerMethodField(
        help_text="The message was spoken; its recording is at .../messages/{id}/audio/."
    )
    audio_duration_ms = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    turn_id = serializers.IntegerField(allow_null=True)
    tool_calls = serializers.JSONField()
    tool_call_id = serializers.CharField()
    tool_name = serializers.CharField()
    tool_result = serializers.JSONField()
    task_ids = serializers.JSONField()
    provider = serializers.CharField()
    model = serializers.CharField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    latency_ms = serializers.IntegerField(allow_null=True)
    error_code = serializers.CharField()
    error_message = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_has_audio(self, obj: Any) -> bool:
        return bool(obj.audio)


class NodeAttachInput(serializers.Serializer):
    node_id = serializers.CharField(max_length=63)
    working_dir = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, default=""
    )


class AttachmentOutput(serializers.Serializer):
    node_id = serializers.CharField(source="node.node_id")
    display_name = serializers.CharField(source="node.display_name")
    status = serializers.CharField(source="node.status")
    working_dir = serializers.CharField()
    attached_at = serializers.DateTimeField()


class ApprovalOutput(serializers.Serializer):
    id = serializers.IntegerField()
    message_id = serializers.IntegerField()
    tool_call_id = serializers.CharField()
    tool = serializers.CharField(source="tool_name")
    node_id = serializers.CharField()
    arguments = serializers.JSONField()
    reason = serializers.CharField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.SerializerMethodField(
        help_text="Email of the person who decided; null while pending or when it timed out."
    )
    suggested_patterns = serializers.SerializerMethodField(
        help_text='What "always allow" would store; null when no standing rule may cover it.'
    )
    created_at = serializers.DateTimeField()

    def get_decided_by(self, obj: Any) -> str | None:
        return obj.decided_by.email if obj.decided_by_id else None

    def get_suggested_patterns(self, obj: Any) -> list[str] | None:
        from sessions_app.services.approval_rules import approval_rule_suggestion

        return approval_rule_suggestion(approval=obj) if obj.status == "pending" else None


class ApprovalsQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=("pending", "all"), required=False, default="pending")


class ApprovalApproveInput(serializers.Serializer):
    remember = serializers.ChoiceField(
        choices=("", "session", "me"),
        required=False,
        default="",
        help_text='"session" or "me": also allow calls like this one from now on (a standing '
        "rule for this tool, these command patterns and this node).",
    )
    patterns = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        max_length=8,
        help_text="Command patterns in the sandbox policy's syntax; default: the command's "
        "first words (see suggested_patterns).",
    )


class CancelOutput(serializers.Serializer):
    message_id = serializers.IntegerField(source="pk")
    status = serializers.SerializerMethodField()

    def get_status(self, obj: Any) -> str:
        return "cancelling"


class EventsQuery(serializers.Serializer):
    after_seq = serializers.IntegerField(min_value=0, required=False, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=1000, required=False, default=1000)


class EventsOutput(serializers.Serializer):
    last_seq = serializers.IntegerField()
    results = serializers.ListField(child=serializers.DictField())


class ModelChoicesOutput(serializers.Serializer):
    provider = serializers.CharField(help_text="Effective provider (session override included).")
    model = serializers.CharField(help_text="Effective model (session override included).")
    model_source = serializers.CharField(help_text="Layer the model comes from.")
    session_provider = serializers.CharField()
    session_model = serializers.CharField()
    locked = serializers.DictField(
        child=serializers.CharField(), help_text="{field: layer that locks it}."
    )
    allowed_models = serializers.ListField(
        child=serializers.CharField(), help_text="Empty: any model; else only these."
    )
    allowed_providers = serializers.ListField(child=serializers.CharField())
    error = serializers.DictField(allow_null=True)
