"""REST routes of the tools app, included under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from tools.api import views

router = SimpleRouter()
router.register("tools", views.ToolViewSet, basename="tool")
router.register("skills", views.SkillViewSet, basename="skill")
router.register("admin/tool-switches", views.ToolSwitchViewSet, basename="admin-tool-switch")

urlpatterns: list[URLPattern | URLResolver] = [path("", include(router.urls))]
