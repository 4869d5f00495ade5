"""REST routes of the sessions_app app, included under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from sessions_app.api import rules, views

router = SimpleRouter()
router.register("sessions", views.SessionViewSet, basename="session")
router.register("approval-rules", rules.ApprovalRuleViewSet, basename="approval-rule")

urlpatterns: list[URLPattern | URLResolver] = [path("", include(router.urls))]
