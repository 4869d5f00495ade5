"""REST routes of the preferences app, included under /api/v1/."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, include, path, re_path

from preferences.api import views

KIND = r"(?P<kind>llm|tts|stt)"
_layer: dict[str, Any] = {"get": "retrieve", "patch": "partial_update", "put": "update"}

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("preferences.api.voice")),
    path(
        "preferences/",
        views.PreferencesViewSet.as_view({"get": "overview"}),
        name="preferences-overview",
    ),
    path(
        "preferences/export/",
        views.PreferencesViewSet.as_view({"get": "export"}),
        name="preferences-export",
    ),
    path(
        "preferences/import/",
        views.PreferencesViewSet.as_view({"post": "import_yaml"}),
        name="preferences-import",
    ),
    re_path(
        rf"^preferences/{KIND}/$",
        views.PreferencesViewSet.as_view(_layer),
        name="preferences-layer",
    ),
    re_path(
        rf"^preferences/{KIND}/verify/$",
        views.PreferencesViewSet.as_view({"post": "verify"}),
        name="preferences-verify",
    ),
    re_path(
        rf"^admin/preferences/{KIND}/$",
        views.AdminSystemPreferencesViewSet.as_view(_layer),
        name="admin-preferences-system",
    ),
    re_path(
        rf"^admin/groups/(?P<group_id>[0-9]+)/preferences/{KIND}/$",
        views.AdminGroupPreferencesViewSet.as_view(_layer),
        name="admin-preferences-group",
    ),
]
