"""Django admin for tools: read-only views; changes go through the REST API and its services."""

from __future__ import annotations

from django.contrib import admin

from cortex.admin import ReadOnlyAdmin
from tools.models import Skill, ToolSwitch


@admin.register(ToolSwitch)
class ToolSwitchAdmin(ReadOnlyAdmin):
    list_display = ("tool_name", "group", "reason", "created_by", "created_at")
    list_filter = ("tool_name",)


@admin.register(Skill)
class SkillAdmin(ReadOnlyAdmin):
    list_display = ("name", "owner", "is_enabled", "updated_at")
    search_fields = ("name", "description")
