"""Django admin for sessions_app: chat metadata only, never what was said.

The API keeps a chat private to its owner, admins included; the admin must not be a way
around that. So no page here shows or searches message text, titles (made from the first
message), tool arguments or results, audio, error text or turn events: every model admin lists
its fields explicitly, and what is not listed is not shown.
"""

from __future__ import annotations

from django.contrib import admin

from cortex.admin import ReadOnlyAdmin
from sessions_app.models import ChatSession, Message, SessionNode, ToolApproval


class _MetadataOnly(ReadOnlyAdmin):
    """Read-only and deletable; `fields` is the whole of what a page shows."""

    # Sessions change through sessions_app.services (REST); the admin only looks and deletes.
    deletable = True


class SessionNodeInline(admin.TabularInline):
    model = SessionNode
    extra = 0
    fields = ("node", "attached_by", "attached_at")
    readonly_fields = fields

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(ChatSession)
class ChatSessionAdmin(_MetadataOnly):
    list_display = ("id", "owner", "approval_policy", "is_archived", "updated_at")
    list_filter = ("approval_policy", "is_archived")
    search_fields = ("owner__email",)
    fields = (
        "owner",
        "provider",
        "model",
        "approval_policy",
        "is_archived",
        "tokens_in",
        "tokens_out",
        "last_seq",
        "cancel_requested_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = (SessionNodeInline,)


@admin.register(Message)
class MessageAdmin(_MetadataOnly):
    list_display = ("id", "session", "role", "status", "error_code", "created_at")
    list_filter = ("role", "status")
    search_fields = ("session__owner__email",)
    fields = (
        "session",
        "turn",
        "role",
        "status",
        "tool_name",
        "tool_call_id",
        "provider",
        "model",
        "tokens_in",
        "tokens_out",
        "latency_ms",
        "audio_duration_ms",
        "error_code",
        "created_at",
        "finished_at",
    )
    readonly_fields = fields


@admin.register(ToolApproval)
class ToolApprovalAdmin(_MetadataOnly):
    list_display = ("id", "session", "tool_name", "node_id", "status", "decided_by", "created_at")
    list_filter = ("status",)
    fields = (
        "session",
        "message",
        "tool_call_id",
        "tool_name",
        "node_id",
        "status",
        "decided_by",
        "decided_at",
        "expires_at",
        "created_at",
    )
    readonly_fields = fields
