"""REST routes of the agents app, included under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from agents.api import views

router = SimpleRouter()
router.register("agents", views.AgentViewSet, basename="agent")

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "agents/<str:agent_id>/trigger/",
        views.AgentWebhookViewSet.as_view({"post": "trigger"}),
        name="agent-trigger",
    ),
    path("", include(router.urls)),
]
