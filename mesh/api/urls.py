"""REST routes of the mesh app, included under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from mesh.api import views

router = SimpleRouter()
router.register("nodes", views.NodeViewSet, basename="node")
router.register("tasks", views.TaskViewSet, basename="task")

urlpatterns: list[URLPattern | URLResolver] = [path("", include(router.urls))]
urlpatterns.append(path("", include("mesh.api.bundle")))  # provisioning bundle (agent helper)
urlpatterns.append(path("", include("mesh.api.stats")))  # stats history (consoles)
urlpatterns.append(path("", include("mesh.api.install")))  # one-line node install
urlpatterns.append(path("", include("mesh.api.policy")))  # sandbox policy check (admins)
