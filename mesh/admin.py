"""Django admin for mesh: every write goes through the mesh services (audited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.context import AuditContext
from accounts.selectors import user_signed_in
from cortex.admin import ReadOnlyAdmin
from mesh import services
from mesh.models import Node, NodeGroupAccess, Task, TaskOutputChunk

EDITABLE = ("display_name", "description", "skill_config", "sandbox_policy", "is_active")


class NodeGroupAccessInline(admin.TabularInline):
    model = NodeGroupAccess
    extra = 0
    fields = ("group", "granted_by", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ("node_id", "display_name", "status", "is_active", "last_seen_at", "version")
    list_filter = ("status", "is_active")
    search_fields = ("node_id", "display_name")
    inlines = [NodeGroupAccessInline]
    readonly_fields = (
        "capabilities",
        "version",
        "platform",
        "hostname",
        "status",
        "offline_reason",
        "last_seen_at",
        "stats",
        "created_by",
        "created_at",
        "updated_at",
    )
    exclude = ("connection_id", "disconnected_at", "rotation_requested_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.readonly_fields + (("node_id",) if obj is not None else ())

    def save_model(self, request: HttpRequest, obj: Node, form: Any, change: bool) -> None:
        if change:
            data = {
                field: form.cleaned_data[field] for field in EDITABLE if field in form.changed_data
            }
            fresh = Node.objects.get(pk=obj.pk)
            services.node_update(
                actor=user_signed_in(user=request.user),
                node=fresh,
                data=data,
                audit_context=AuditContext.admin(request),
            )
            return
        node, token = services.node_create(
            actor=user_signed_in(user=request.user),
            node_id=obj.node_id,
            display_name=obj.display_name,
            description=obj.description,
            skill_config=obj.skill_config,
            audit_context=AuditContext.admin(request),
        )
        obj.pk = node.pk
        messages.warning(request, f"Invite token for {node.node_id} (shown once): {token}")

    def delete_model(self, request: HttpRequest, obj: Node) -> None:
        services.node_delete(
            actor=user_signed_in(user=request.user),
            node=obj,
            audit_context=AuditContext.admin(request),
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Node]) -> None:
        for node in queryset:
            services.node_delete(
                actor=user_signed_in(user=request.user),
                node=node,
                audit_context=AuditContext.admin(request),
            )


@admin.register(NodeGroupAccess)
class NodeGroupAccessAdmin(admin.ModelAdmin):
    list_display = ("node", "group", "granted_by", "created_at")
    list_filter = ("group",)
    readonly_fields = ("granted_by", "created_at")

    def save_model(
        self, request: HttpRequest, obj: NodeGroupAccess, form: Any, change: bool
    ) -> None:
        access = services.node_grant(
            actor=user_signed_in(user=request.user),
            node=obj.node,
            group=obj.group,
            audit_context=AuditContext.admin(request),
        )
        obj.pk = access.pk

    def delete_model(self, request: HttpRequest, obj: NodeGroupAccess) -> None:
        services.node_revoke(
            actor=user_signed_in(user=request.user),
            node=obj.node,
            group=obj.group,
            audit_context=AuditContext.admin(request),
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[NodeGroupAccess]) -> None:
        for access in queryset.select_related("node", "group"):
            services.node_revoke(
                actor=user_signed_in(user=request.user),
                node=access.node,
                group=access.group,
                audit_context=AuditContext.admin(request),
            )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "node", "kind", "status", "exit_code", "requested_by", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("id", "node__node_id", "tool_call_id")
    list_select_related = ("node", "requested_by")


@admin.register(TaskOutputChunk)
class TaskOutputChunkAdmin(ReadOnlyAdmin):
    list_display = ("task", "seq", "stream", "size", "created_at")
    list_select_related = ("task",)
