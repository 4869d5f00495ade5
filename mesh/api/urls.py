"""REST routes of the mesh app, included under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from cortex.api.longpoll import long_poll
from mesh import services
from mesh.api import views

router = SimpleRouter()
router.register("nodes", views.NodeViewSet, basename="node")
router.register("tasks", views.TaskViewSet, basename="task")


async def _wait_for_task(task_id: object, timeout: float) -> None:
    await services.task_wait_async(task_id=task_id, timeout=timeout)  # type: ignore[arg-type]


def _routes() -> list[URLPattern | URLResolver]:
    """The router's routes; `GET /tasks/{id}/?wait=` waits on the loop (cortex.api.longpoll)."""
    routes: list[URLPattern | URLResolver] = []
    for route in router.urls:
        if isinstance(route, URLPattern) and route.name == "task-detail":
            route = URLPattern(
                route.pattern,
                long_poll(route.callback, wait=_wait_for_task),
                route.default_args,
                route.name,
            )
        routes.append(route)
    return routes


urlpatterns: list[URLPattern | URLResolver] = [path("", include(_routes()))]
urlpatterns.append(path("", include("mesh.api.bundle")))  # provisioning bundle (agent helper)
urlpatterns.append(path("", include("mesh.api.stats")))  # stats history (consoles)
urlpatterns.append(path("", include("mesh.api.install")))  # one-line node install
urlpatterns.append(path("", include("mesh.api.policy")))  # sandbox policy check (admins)
urlpatterns.append(path("", include("mesh.api.workspace")))  # file browser (consoles)
urlpatterns.append(path("", include("mesh.api.terminals")))  # terminal sessions and recordings
