"""Admin base classes shared by the apps (this module registers nothing)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """Look, never write: writes are audited, so they go through services (REST, admin actions
    that call a service), not the admin's forms. `deletable` lets an admin delete rows whose
    deletion needs no service (chat metadata)."""

    deletable = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)
