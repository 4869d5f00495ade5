"""OPTIONS on every route, as anonymous, a user and an admin: never a 5xx, never exception text.

The routes are read from the URL configuration (the same walk as test_route_crawl), so a route
added later is crawled too.
"""

from __future__ import annotations

import pytest
from django.urls import get_resolver
from rest_framework.test import APIClient

from accounts.tests.test_url_protection import _walk


@pytest.mark.django_db
def test_options_never_fails_on_any_route(user, staff_user):
    routes = _walk(get_resolver())
    user_client = APIClient(raise_request_exception=False)
    user_client.force_login(user)
    admin_client = APIClient(raise_request_exception=False)
    admin_client.force_login(staff_user)
    callers = {
        "anonymous": APIClient(raise_request_exception=False),
        "user": user_client,
        "admin": admin_client,
    }
    failures = []
    for label, client in callers.items():
        for path, _pattern in routes:
            response = client.options(path)
            if response.status_code >= 500 or b"Traceback" in response.content:
                failures.append(f"{label} OPTIONS {path} -> {response.status_code}")
    assert len(routes) > 60
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth/logout/",
        "/api/v1/preferences/llm/",
        "/api/v1/admin/preferences/tts/",
        "/api/v1/admin/groups/1/preferences/stt/",
    ],
)
def test_options_on_the_reported_routes_answers_200(staff_user, path):
    client = APIClient()
    client.force_login(staff_user)
    response = client.options(path)
    assert response.status_code == 200, response.content
    assert "GET" in response["Allow"] or "POST" in response["Allow"]
