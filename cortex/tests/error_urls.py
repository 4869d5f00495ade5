"""A URL conf for tests: the project's routes plus views that fail on purpose."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cortex.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401

SECRET_TEXT = "do-not-show-this-internal-detail"


class FailingApiView(APIView):
    permission_classes = ()

    def get(self, request: Request) -> Response:
        raise RuntimeError(SECRET_TEXT)


def failing_django_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET_TEXT)


def too_big_django_view(request: HttpRequest) -> HttpResponse:
    raise RequestDataTooBig(SECRET_TEXT)


urlpatterns = [
    path("api/v1/test-fail/drf/", FailingApiView.as_view()),
    path("api/v1/test-fail/django/", failing_django_view),
    path("api/v1/test-fail/too-big/", too_big_django_view),
    *urlpatterns,
]
