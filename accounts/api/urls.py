"""REST routes of the accounts app, included under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from accounts.api import admin_views, views

router = SimpleRouter()
router.register("audit", views.AuditEventViewSet, basename="audit")
router.register("users/me/tokens", views.MyTokenViewSet, basename="my-token")
router.register("admin/users", admin_views.AdminUserViewSet, basename="admin-user")
router.register("admin/groups", admin_views.AdminGroupViewSet, basename="admin-group")

urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/login/", views.LoginViewSet.as_view({"post": "create"}), name="auth-login"),
    path("auth/logout/", views.LogoutViewSet.as_view({"post": "create"}), name="auth-logout"),
    path("auth/csrf/", views.CsrfViewSet.as_view({"get": "list"}), name="auth-csrf"),
    path(
        "users/me/",
        views.MeViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="me",
    ),
    path(
        "users/me/password/",
        views.PasswordChangeViewSet.as_view({"post": "create"}),
        name="me-password",
    ),
    path("ws-ticket/", views.WsTicketViewSet.as_view({"post": "create"}), name="ws-ticket"),
    path(
        "admin/app-config/",
        admin_views.AppConfigViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="admin-app-config",
    ),
    path("", include(router.urls)),
]
