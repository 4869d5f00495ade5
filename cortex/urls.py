"""Root URL configuration: each app contributes its own `api/urls.py` under /api/v1/."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response

from cortex.api import views
from cortex.api.metadata import options_as_json


class DocsView(SpectacularSwaggerView):
    """The interactive docs page; OPTIONS answers JSON (its renderer is an HTML template)."""

    # DRF hands its own Request to the handler; the stubs keep View's HttpRequest.
    def options(self, request: Request, *args: object, **kwargs: object) -> Response:  # type: ignore[override]
        options_as_json(request)
        return super().options(request, *args, **kwargs)


api_v1: list[URLPattern | URLResolver] = [
    path("", include("accounts.api.urls")),
    path("", include("preferences.api.urls")),
    path("", include("mesh.api.urls")),
    path("", include("tools.api.urls")),
    path("", include("sessions_app.api.urls")),
    path("", include("agents.api.urls")),
    path("", include("workspaces.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^(?P<path>.*)$", views.api_not_found, name="api-not-found"),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    # OIDC sign-in (answers 404 while OIDC is not configured): authenticate/, callback/, logout/.
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("api/v1/", include(api_v1)),
    path("console/", include("console.urls")),  # web consoles (pages only; data via API)
]

# Django's own error paths (views that are not DRF's): the shared error body under /api/.
handler400 = "cortex.api.views.bad_request"
handler403 = "cortex.api.views.permission_denied"
handler404 = "cortex.api.views.page_not_found"
handler500 = "cortex.api.views.server_error"
