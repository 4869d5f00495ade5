"""Django admin for accounts: users, groups, tokens (never shown), and the read-only audit log.

Every change goes through the services, so the admin writes the same audit events as the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.context import AuditContext
from accounts.models import ApiToken, AuditEvent, AuditRefusalWindow, User
from accounts.selectors import user_signed_in
from cortex.admin import ReadOnlyAdmin
from cortex.errors import CortexError


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: nothing can change or delete an audit event."""

    list_display = ("created_at", "action", "actor_label", "target_type", "target_id", "source")
    list_filter = ("source",)
    search_fields = ("action", "actor_label", "target_id")


@admin.register(AuditRefusalWindow)
class AuditRefusalWindowAdmin(ReadOnlyAdmin):
    """Read-only: how many refusals each aggregated audit event stands for."""

    list_display = ("window_start", "action", "reason", "actor_key", "count", "first_event")
    list_filter = ("action", "reason")
    search_fields = ("actor_key",)


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Users: create, edit harmless fields and the admin flag, deactivate (never delete)."""

    list_display = ("email", "display_name", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_active", "groups")
    search_fields = ("email", "display_name")
    ordering = ("email",)
    fields = ("email", "display_name", "is_staff", "is_active", "groups", "oidc_sub", "last_login")
    readonly_fields = ("groups", "oidc_sub", "last_login")
    actions = ["deactivate"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        data = {
            k: form.cleaned_data[k]
            for k in ("email", "display_name", "is_staff", "is_active")
            if k in form.cleaned_data
        }
        if change:
            current = User.objects.get(pk=obj.pk)
            services.user_update(
                actor=user_signed_in(user=request.user),
                user=current,
                data=data,
                audit_context=AuditContext.admin(request),
            )
        else:
            created = services.user_create(
                actor=user_signed_in(user=request.user),
                email=data["email"],
                display_name=data.get("display_name", ""),
                is_staff=data.get("is_staff", False),
                audit_context=AuditContext.admin(request),
            )
            obj.pk = created.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Memberships change through the group endpoints and services, not this form.
        return

    @admin.action(description="Deactivate (ends sessions, revokes tokens)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            try:
                services.user_deactivate(
                    actor=user_signed_in(user=request.user),
                    user=user,
                    audit_context=AuditContext.admin(request),
                )
            except CortexError as exc:
                self.message_user(request, f"{user.email}: {exc.message}", messages.ERROR)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """Groups by name; created, renamed and deleted through the audited services."""

    fields = ("name",)
    filter_horizontal = ()

    def save_model(self, request: HttpRequest, obj: Group, form: Any, change: bool) -> None:
        if change:
            current = Group.objects.get(pk=obj.pk)
            services.group_update(
                actor=user_signed_in(user=request.user),
                group=current,
                name=obj.name,
                audit_context=AuditContext.admin(request),
            )
        else:
            obj.pk = services.group_create(
                actor=user_signed_in(user=request.user),
                name=obj.name,
                audit_context=AuditContext.admin(request),
            ).pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        services.group_delete(
            actor=user_signed_in(user=request.user),
            group=obj,
            audit_context=AuditContext.admin(request),
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Group]) -> None:
        for group in queryset:
            self.delete_model(request, group)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens by name and prefix; the hash is never shown. Admins may only revoke."""

    list_display = (
        "name",
        "prefix",
        "user",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__email")
    fields = ("user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            services.token_revoke(
                actor=user_signed_in(user=request.user),
                token=token,
                audit_context=AuditContext.admin(request),
            )
