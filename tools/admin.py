"""Django admin for tools: read-only views; changes go through the REST API and its services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tools.models import Skill, ToolSwitch


class ReadOnlyAdmin(admin.ModelAdmin):
    """Writes must be audited, so they go through services (`/api/v1/...`), not the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ToolSwitch)
class ToolSwitchAdmin(ReadOnlyAdmin):
    list_display = ("tool_name", "group", "reason", "created_by", "created_at")
    list_filter = ("tool_name",)


@admin.register(Skill)
class SkillAdmin(ReadOnlyAdmin):
    list_display = ("name", "owner", "is_enabled", "updated_at")
    search_fields = ("name", "description")
