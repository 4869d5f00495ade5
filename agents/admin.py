"""Admin: agents and runs, read-mostly (changes go through the API's services)."""

from __future__ import annotations

from django.contrib import admin

from agents.models import Agent, AgentRun


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "trigger_kind", "paused", "next_fire_at")
    exclude = ("webhook_secret",)
    readonly_fields = ("owner", "next_fire_at")

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(AgentRun)
class AgentRunAdmin(admin.ModelAdmin):
    list_display = ("id", "agent", "trigger", "scheduled_for", "status", "score")
    list_filter = ("status", "trigger")

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
