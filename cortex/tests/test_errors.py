from typing import cast

import pytest
from rest_framework import serializers
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from cortex import errors
from cortex.api.exceptions import _flatten_fields, exception_handler


@pytest.mark.django_db
def test_unknown_api_path_answers_the_error_body(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "No API endpoint at this path."}
    }


@pytest.mark.django_db
def test_unauthenticated_call_answers_401_with_the_error_body(anon_client):
    response = anon_client.get("/api/v1/audit/")
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "not_authenticated"
    assert set(body["error"]) == {"code", "message"}
    assert response["WWW-Authenticate"]


@pytest.mark.django_db
def test_non_admin_gets_403_on_admin_only_list(user_client):
    response = user_client.get("/api/v1/audit/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


class _Boom(APIView):
    permission_classes: list = []
    authentication_classes: list = []
    exc: Exception = RuntimeError("secret detail")

    def get(self, request):
        raise self.exc


def _call(exc: Exception):
    view = cast("type[_Boom]", type("V", (_Boom,), {"exc": exc})).as_view()
    return view(APIRequestFactory().get("/x"))


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (errors.ValidationFailed("bad", fields={"a": ["no"]}), 400, "invalid_input"),
        (errors.NotFound(), 404, "not_found"),
        (errors.PermissionDenied(), 403, "permission_denied"),
        (errors.Conflict("busy", code="node_busy"), 409, "node_busy"),
        (errors.Unavailable(), 503, "unavailable"),
        (errors.NotAuthenticated(), 401, "not_authenticated"),
    ],
)
def test_domain_errors_map_to_status_and_stable_code(exc, status, code):
    response = _call(exc)
    assert response.status_code == status
    assert response.data["error"]["code"] == code


def test_validation_error_carries_fields():
    response = _call(errors.ValidationFailed("bad", fields={"timeout": ["Too big."]}))
    assert response.data == {
        "error": {"code": "invalid_input", "message": "bad", "fields": {"timeout": ["Too big."]}}
    }


def test_throttled_sets_retry_after():
    response = _call(errors.Throttled(retry_after=7))
    assert response.status_code == 429
    assert response["Retry-After"] == "7"


def test_drf_validation_error_is_flattened():
    class S(serializers.Serializer):
        timeout = serializers.IntegerField(max_value=10)

    s = S(data={"timeout": 99})
    assert not s.is_valid()
    response = _call(serializers.ValidationError(s.errors))
    assert response.status_code == 400
    assert response.data["error"]["fields"] == {
        "timeout": ["Ensure this value is less than or equal to 10."]
    }


def test_django_errors_are_translated():
    from django.core.exceptions import PermissionDenied as DjangoDenied
    from django.core.exceptions import ValidationError as DjangoValidation
    from django.http import Http404

    assert _call(Http404()).status_code == 404
    assert _call(DjangoDenied()).status_code == 403
    response = _call(DjangoValidation({"name": ["Taken."]}))
    assert response.data["error"]["fields"] == {"name": ["Taken."]}


def test_unexpected_error_is_a_logged_500_without_detail(settings, caplog):
    settings.DEBUG = False
    response = _call(RuntimeError("secret detail"))
    assert response.status_code == 500
    assert response.data == {"error": {"code": "server_error", "message": "Internal server error."}}
    assert "Unhandled error" in caplog.text


def test_flatten_nested_fields():
    nested = {"a": {"b": ["x"]}, "c": [{"d": ["y"]}]}
    assert _flatten_fields(nested) == {"a.b": ["x"], "c.0.d": ["y"]}
    assert _flatten_fields("plain") == {"non_field_errors": ["plain"]}


def test_handler_returns_none_path_is_not_used_for_known_errors():
    assert exception_handler(errors.NotFound(), {"view": None}).status_code == 404
