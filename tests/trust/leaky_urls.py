"""The project's URL conf plus one route that forgot protection (for the crawl's own test)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from cortex.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def leak(request: HttpRequest) -> JsonResponse:
    """Answers anyone: the crawl must report it."""
    return JsonResponse({"open": True})


urlpatterns = [path("leak/", leak, name="leak"), *project_urlpatterns]
