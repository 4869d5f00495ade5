"""REST routes of workspaces, under /api/v1/sessions/{id}/workspace/."""

from __future__ import annotations

from django.urls import URLPattern, path

from workspaces.api.views import WorkspaceViewSet

urlpatterns: list[URLPattern] = [
    path(
        "sessions/<str:pk>/workspace/",
        WorkspaceViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="session-workspace",
    ),
    path(
        "sessions/<str:pk>/workspace/files/",
        WorkspaceViewSet.as_view({"get": "files"}),
        name="session-workspace-files",
    ),
    path(
        "sessions/<str:pk>/workspace/file/",
        WorkspaceViewSet.as_view({"get": "download", "put": "upload", "delete": "remove"}),
        name="session-workspace-file",
    ),
    path(
        "sessions/<str:pk>/workspace/resync/",
        WorkspaceViewSet.as_view({"post": "resync"}),
        name="session-workspace-resync",
    ),
    path(
        "sessions/<str:pk>/workspace/resolve/",
        WorkspaceViewSet.as_view({"post": "resolve"}),
        name="session-workspace-resolve",
    ),
]
