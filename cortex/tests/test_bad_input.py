"""Bad input gets a clear 4xx with a stable code, never a 500, never exception text."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from cortex.tests.error_urls import SECRET_TEXT


@pytest.fixture
def client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient(raise_request_exception=False)
    client.force_login(user)
    return client


def _error(response) -> dict:  # type: ignore[no-untyped-def, type-arg]
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/sessions/", "/api/v1/users/me/tokens/"])
def test_a_30_mb_json_body_is_413(client, path):
    response = client.post(
        path, json.dumps({"title": "x" * (30 * 1024 * 1024)}), content_type="application/json"
    )
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"


@pytest.mark.django_db
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_nested_100000_deep_is_400(client, opener):
    body = opener * 100_000 + ("]" if opener == "[" else "}") * 100_000
    response = client.post("/api/v1/sessions/", body, content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] in ("too_deeply_nested", "malformed_request")


@pytest.mark.django_db
def test_bad_json_answers_without_the_parser_text(client):
    response = client.post("/api/v1/sessions/", "{bad", content_type="application/json")
    assert response.status_code == 400
    assert _error(response) == {"code": "malformed_request", "message": "JSON parse error"}


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [40, 3000])
def test_yaml_nested_deep_is_400_on_import(client, depth):
    text = "version: 1\npreferences: " + "[" * depth + "]" * depth + "\n"
    response = client.post("/api/v1/preferences/import/", text, content_type="application/yaml")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid_input"
    assert error["fields"] == {"file": ["Nested too deeply (at most 32 levels)."]}


@pytest.mark.django_db
def test_multipart_with_2000_fields_is_400(client):
    data = {f"f{i}": "x" for i in range(2000)}
    response = client.post("/api/v1/preferences/import/", data)
    assert response.status_code == 400
    assert _error(response)["code"] == "too_many_fields"


@pytest.mark.django_db
def test_multipart_with_200_files_is_413(client):
    files = {f"file{i}": SimpleUploadedFile(f"a{i}.txt", b"x") for i in range(200)}
    response = client.post("/api/v1/preferences/import/", files)
    assert response.status_code == 413
    assert _error(response)["code"] == "too_many_files"


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_never_shows_its_text(settings, user, debug):
    settings.DEBUG = debug
    settings.ROOT_URLCONF = "cortex.tests.error_urls"
    client = APIClient(raise_request_exception=False)
    client.force_login(user)
    for path in ("/api/v1/test-fail/drf/", "/api/v1/test-fail/django/"):
        response = client.get(path)
        assert response.status_code == 500
        assert SECRET_TEXT.encode() not in response.content
        assert "RuntimeError" not in response.content.decode()
        assert response.json() == {
            "error": {"code": "server_error", "message": "Internal server error."}
        }


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_django_level_too_big_is_413_in_the_shared_shape(settings, debug):
    settings.DEBUG = debug
    settings.ROOT_URLCONF = "cortex.tests.error_urls"
    response = APIClient(raise_request_exception=False).get("/api/v1/test-fail/too-big/")
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"
    assert SECRET_TEXT.encode() not in response.content


@pytest.mark.django_db
def test_django_400_handler_answers_json_under_api(rf):
    from django.core.exceptions import TooManyFieldsSent

    from cortex.api.views import bad_request

    response = bad_request(rf.post("/api/v1/x/"), TooManyFieldsSent("detail"))
    assert response.status_code == 400
    assert json.loads(response.content) == {
        "error": {"code": "too_many_fields", "message": "The request has too many form fields."}
    }
    page = bad_request(rf.post("/console/"), TooManyFieldsSent("detail"))
    assert page.status_code == 400
    assert not page["Content-Type"].startswith("application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_a_middleware_error_under_api_answers_the_shared_shape(settings, debug):
    """A bad Host header fails in Django's middleware; under DEBUG its page names the host."""
    settings.DEBUG = debug
    response = APIClient(raise_request_exception=False).get(
        "/api/v1/nodes/", HTTP_HOST="evil-host.example"
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "bad_request", "message": "The request could not be understood."}
    }
    assert b"evil-host" not in response.content
    assert response["X-Request-ID"]
