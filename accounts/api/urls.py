"""REST routes of the accounts app, included under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from accounts.api import views

router = SimpleRouter()
router.register("audit", views.AuditEventViewSet, basename="audit")

urlpatterns: list[URLPattern | URLResolver] = [path("", include(router.urls))]
