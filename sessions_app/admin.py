"""Django admin for sessions_app: read-mostly views of sessions, messages and approvals."""

from __future__ import annotations

from django.contrib import admin

from sessions_app.models import ChatSession, Message, SessionNode, ToolApproval


class SessionNodeInline(admin.TabularInline):
    model = SessionNode
    extra = 0
    raw_id_fields = ("node", "attached_by")


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "owner", "approval_policy", "is_archived", "updated_at")
    list_filter = ("approval_policy", "is_archived")
    search_fields = ("title", "owner__email")
    raw_id_fields = ("owner",)
    readonly_fields = ("tokens_in", "tokens_out", "last_seq", "cancel_requested_at")
    inlines = (SessionNodeInline,)

    # Sessions change through sessions_app.services (REST); the admin only looks and deletes.
    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "role", "status", "error_code", "created_at")
    list_filter = ("role", "status")
    raw_id_fields = ("session", "turn")
    search_fields = ("content",)

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(ToolApproval)
class ToolApprovalAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "tool_name", "node_id", "status", "decided_by", "created_at")
    list_filter = ("status",)
    raw_id_fields = ("session", "message", "decided_by")

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
