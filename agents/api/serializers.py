"""Input and output shapes of the agents API (one serializer per direction and endpoint)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from agents.models import CatchUp

LLM_PROVIDERS = ("", "openai_compatible", "anthropic", "gemini")


class TriggerInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=("interval", "cron", "manual"))
    seconds = serializers.IntegerField(min_value=1, max_value=366 * 86400, required=False)
    expression = serializers.CharField(max_length=120, required=False)
    timezone = serializers.CharField(max_length=64, required=False, default="UTC")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == "interval" and "seconds" not in attrs:
            raise serializers.ValidationError({"seconds": ["Required for an interval trigger."]})
        if attrs["kind"] == "cron" and not attrs.get("expression"):
            raise serializers.ValidationError({"expression": ["Required for a cron trigger."]})
        return attrs


class UnattendedRuleInput(serializers.Serializer):
    node_id = serializers.CharField(max_length=128)
    tool = serializers.CharField(max_length=128)
    command = serializers.CharField(max_length=200, required=False, allow_blank=False)
    action = serializers.CharField(max_length=32, required=False, allow_blank=False)


class UnattendedInput(serializers.Serializer):
    allow = serializers.ListField(child=UnattendedRuleInput(), max_length=32)


class _AgentFields(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    prompt = serializers.CharField(max_length=20_000)
    instructions = serializers.CharField(max_length=20_000, required=False, allow_blank=True)
    provider = serializers.ChoiceField(choices=LLM_PROVIDERS, required=False)
    model = serializers.CharField(max_length=200, required=False, allow_blank=True)
    node_ids = serializers.ListField(
        child=serializers.CharField(max_length=128), max_length=32, required=False
    )
    skills = serializers.ListField(
        child=serializers.CharField(max_length=128), max_length=32, required=False
    )
    trigger = TriggerInput()
    catch_up = serializers.ChoiceField(choices=CatchUp.choices, required=False)
    unattended = UnattendedInput(required=False)
    max_steps = serializers.IntegerField(min_value=1, max_value=100, required=False)
    max_runtime_s = serializers.IntegerField(min_value=10, max_value=86400, required=False)
    max_tokens = serializers.IntegerField(min_value=100, max_value=10_000_000, required=False)
    approval_timeout_s = serializers.IntegerField(min_value=5, max_value=7 * 86400, required=False)
    rubric = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    rework_threshold = serializers.IntegerField(min_value=0, max_value=100, required=False)
    max_reworks = serializers.IntegerField(min_value=0, max_value=5, required=False)


class AgentCreateInput(_AgentFields):
    node_ids = serializers.ListField(
        child=serializers.CharField(max_length=128), max_length=32, default=list
    )


class AgentUpdateInput(_AgentFields):
    pass


class RunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    trigger = serializers.CharField()
    scheduled_for = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    session_id = serializers.IntegerField(allow_null=True)
    score = serializers.IntegerField(allow_null=True)
    feedback = serializers.CharField()
    reworks = serializers.IntegerField()
    error_code = serializers.CharField()
    cancel_requested_at = serializers.DateTimeField(allow_null=True)


class AgentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prompt = serializers.CharField()
    instructions = serializers.CharField()
    provider = serializers.CharField()
    model = serializers.CharField()
    node_ids = serializers.SerializerMethodField()
    skills = serializers.JSONField()
    trigger = serializers.SerializerMethodField()
    catch_up = serializers.CharField()
    unattended = serializers.SerializerMethodField()
    paused = serializers.BooleanField()
    next_fire_at = serializers.SerializerMethodField()
    max_steps = serializers.IntegerField()
    max_runtime_s = serializers.IntegerField()
    max_tokens = serializers.IntegerField()
    approval_timeout_s = serializers.IntegerField()
    rubric = serializers.CharField()
    rework_threshold = serializers.IntegerField()
    max_reworks = serializers.IntegerField()
    last_runs = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_node_ids(self, obj: Any) -> list[str]:
        return sorted(n.node_id for n in obj.nodes.all())

    def get_trigger(self, obj: Any) -> dict[str, Any]:
        if obj.trigger_kind == "interval":
            return {"kind": "interval", "seconds": obj.interval_seconds}
        if obj.trigger_kind == "cron":
            return {"kind": "cron", "expression": obj.cron_expression, "timezone": obj.timezone}
        return {"kind": "manual"}

    def get_unattended(self, obj: Any) -> dict[str, Any]:
        return {"allow": list(obj.unattended)}

    def get_next_fire_at(self, obj: Any) -> str | None:
        if obj.paused or obj.next_fire_at is None:
            return None
        return serializers.DateTimeField().to_representation(obj.next_fire_at)

    def get_last_runs(self, obj: Any) -> list[dict[str, Any]]:
        runs = getattr(obj, "recent_runs", None)
        if runs is None:
            runs = list(obj.runs.order_by("-scheduled_for", "-id")[:5])
        return list(RunOutput(runs, many=True).data)


class AgentCreatedOutput(AgentOutput):
    """Only at creation and on rotation: the webhook secret in plain text."""

    webhook_secret = serializers.CharField()


class SecretOutput(serializers.Serializer):
    id = serializers.IntegerField()
    webhook_secret = serializers.CharField()
