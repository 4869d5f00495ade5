"""Input and output serializers of the tools API (one per direction and endpoint)."""

from __future__ import annotations

from rest_framework import serializers

from tools.models.skill import SKILL_NAME_VALIDATOR
from tools.skill_files import FEATURES

#: Group ids are 32-bit (auth.Group uses AutoField): larger ones overflowed in the database (500).
GROUP_ID_MAX = 2**31 - 1


class ToolOutput(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    parameters = serializers.JSONField(read_only=True)
    risk = serializers.CharField(read_only=True)
    skill = serializers.CharField(read_only=True, allow_null=True)
    capability = serializers.CharField(read_only=True, allow_null=True)


class SkillOutput(serializers.Serializer):
    key = serializers.CharField(read_only=True)
    id = serializers.IntegerField(read_only=True, allow_null=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    emoji = serializers.CharField(read_only=True)
    features = serializers.ListField(child=serializers.CharField(), read_only=True)
    instructions = serializers.CharField(read_only=True)
    # API fields named like Field attributes (DRF reads declared fields, not these attributes).
    source = serializers.CharField(read_only=True)  # type: ignore[assignment]
    owner = serializers.IntegerField(source="owner_id", read_only=True, allow_null=True)
    owner_email = serializers.CharField(read_only=True)
    is_enabled = serializers.BooleanField(read_only=True)
    read_only = serializers.BooleanField(read_only=True)  # type: ignore[assignment]
    files = serializers.ListField(child=serializers.CharField(), read_only=True)
    shared_with_groups = serializers.ListField(child=serializers.IntegerField(), read_only=True)


class SkillListQuery(serializers.Serializer):
    feature = serializers.ChoiceField(choices=FEATURES, required=False)


class SkillCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=64, validators=[SKILL_NAME_VALIDATOR])
    description = serializers.CharField(max_length=255)
    emoji = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")
    features = serializers.ListField(
        child=serializers.ChoiceField(choices=FEATURES), required=False, default=list
    )
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    files = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        default=dict,
    )
    is_enabled = serializers.BooleanField(required=False, default=True)
    shared_with_groups = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=GROUP_ID_MAX),
        required=False,
        default=list,
        max_length=100,
    )


class SkillUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=64, validators=[SKILL_NAME_VALIDATOR])
    description = serializers.CharField(max_length=255)
    emoji = serializers.CharField(max_length=16, allow_blank=True)
    features = serializers.ListField(child=serializers.ChoiceField(choices=FEATURES))
    instructions = serializers.CharField(allow_blank=True)
    files = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False)
    )
    is_enabled = serializers.BooleanField()
    shared_with_groups = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=GROUP_ID_MAX), max_length=100
    )


class ToolSwitchOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    tool_name = serializers.CharField(read_only=True)
    group = serializers.IntegerField(source="group_id", read_only=True, allow_null=True)
    group_name = serializers.SerializerMethodField()
    reason = serializers.CharField(read_only=True)
    created_by = serializers.IntegerField(source="created_by_id", read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)

    def get_group_name(self, obj: object) -> str | None:
        group = getattr(obj, "group", None)
        return group.name if group is not None else None


class ToolSwitchCreateInput(serializers.Serializer):
    tool_name = serializers.CharField(max_length=64)
    group = serializers.IntegerField(
        min_value=1, max_value=GROUP_ID_MAX, required=False, allow_null=True, default=None
    )
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
