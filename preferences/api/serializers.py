"""Input and output serializers of the preferences API; one per endpoint direction."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

#: Every backend parameter name the API accepts (a test keeps it in step with the registry).
PARAM_FIELDS = (
    "base_url",
    "api_key",
    "model",
    "voice",
    "speed",
    "language",
    "temperature",
    "max_tokens",
)
MASKED_FIELD_HELP = (
    'Secret: send a string to set, null to clear, or the masked value (or "****") to keep. '
    'Reads back as {"configured": true, "last4": "abcd"}.'
)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {"type": "number"},
            {"type": "boolean"},
            {
                "type": "object",
                "properties": {
                    "configured": {"type": "boolean"},
                    "last4": {"type": "string"},
                    "error": {"type": "string"},
                },
            },
        ],
        "nullable": True,
    }
)
class ParamValueField(serializers.JSONField):
    """A backend parameter value; its type is checked against the backend by the service."""


class StrictInput(serializers.Serializer):
    """Rejects unknown keys instead of ignoring them."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


def _param_fields(*, read_only: bool) -> dict[str, serializers.Field]:
    fields: dict[str, serializers.Field] = {}
    for name in PARAM_FIELDS:
        help_text = MASKED_FIELD_HELP if name == "api_key" else "Backend parameter."
        if read_only:
            # Output only, yet not read_only: the schema then lists it as optional (unset
            # fields are left out of the body), where read_only fields count as required.
            fields[name] = ParamValueField(required=False, help_text=help_text)
        else:
            fields[name] = ParamValueField(required=False, allow_null=True, help_text=help_text)
    return fields


class UserLayerInput(StrictInput):
    provider = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, help_text="Backend id; empty inherits."
    )
    locals().update(_param_fields(read_only=False))


class SystemLayerInput(UserLayerInput):
    locked = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Fields lower layers cannot set."
    )


class GroupLayerInput(SystemLayerInput):
    allowed_providers = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Empty: any provider."
    )
    allowed_models = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Empty: any model."
    )


class VerifyInput(UserLayerInput):
    timeout = serializers.FloatField(
        required=False, min_value=0.1, max_value=30.0, help_text="Seconds, default 10."
    )


class LayerOutput(serializers.Serializer):
    kind = serializers.CharField(read_only=True)
    scope = serializers.CharField(read_only=True)
    provider = serializers.CharField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)
    locals().update(_param_fields(read_only=True))


class SystemLayerOutput(LayerOutput):
    locked = serializers.ListField(child=serializers.CharField(), read_only=True)


class GroupLayerOutput(SystemLayerOutput):
    allowed_providers = serializers.ListField(child=serializers.CharField(), read_only=True)
    allowed_models = serializers.ListField(child=serializers.CharField(), read_only=True)


class ErrorObjectOutput(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    message = serializers.CharField(read_only=True)


class EffectiveOutput(serializers.Serializer):
    kind = serializers.CharField(read_only=True)
    provider = serializers.CharField(read_only=True, help_text="Empty when none is configured.")
    values = serializers.DictField(
        child=ParamValueField(), read_only=True, help_text="Secrets masked."
    )
    sources = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text='Per field: "system", "group:<name>", "user", "session" or "default".',
    )
    locked = serializers.DictField(
        child=serializers.CharField(), read_only=True, help_text="Locked field -> locking layer."
    )
    error = ErrorObjectOutput(read_only=True, allow_null=True)


class OverviewOutput(serializers.Serializer):
    llm = EffectiveOutput(read_only=True)
    tts = EffectiveOutput(read_only=True)
    stt = EffectiveOutput(read_only=True)


class VerifyOutput(serializers.Serializer):
    provider = serializers.CharField(read_only=True)
    ok = serializers.BooleanField(read_only=True)
    latency_ms = serializers.IntegerField(read_only=True)
    error_code = serializers.CharField(
        read_only=True,
        help_text="invalid_key, unreachable, model_not_found, provider_error, blocked_address.",
    )
    message = serializers.CharField(read_only=True)


class ImportInput(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="A YAML file from the export.")


class ImportOutput(serializers.Serializer):
    imported = serializers.ListField(child=serializers.CharField(), read_only=True)
