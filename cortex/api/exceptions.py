"""The one HTTP exception handler: wraps DRF's own and reshapes every error body.

Body: {"error": {"code", "message", "fields"?}}; `fields` only for validation errors.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cortex import errors

logger = logging.getLogger("cortex.api")

_STATUS_BY_CATEGORY: list[tuple[type[errors.CortexError], int]] = [
    (errors.ValidationFailed, status.HTTP_400_BAD_REQUEST),
    (errors.NotAuthenticated, status.HTTP_401_UNAUTHORIZED),
    (errors.PermissionDenied, status.HTTP_403_FORBIDDEN),
    (errors.NotFound, status.HTTP_404_NOT_FOUND),
    (errors.Conflict, status.HTTP_409_CONFLICT),
    (errors.Throttled, status.HTTP_429_TOO_MANY_REQUESTS),
    (errors.Unavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
]

_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ValidationError: "invalid_input",
    drf.ParseError: "malformed_request",
    drf.AuthenticationFailed: "authentication_failed",
    drf.NotAuthenticated: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "throttled",
}


class _CortexAPIException(drf.APIException):
    """A CortexError carried through DRF's handler with its status and code."""

    def __init__(self, exc: errors.CortexError, status_code: int) -> None:
        super().__init__(detail=exc.message, code=exc.code)
        self.status_code = status_code
        self.cortex_error = exc
        if exc.retry_after is not None:
            self.wait = exc.retry_after


def status_for(exc: errors.CortexError) -> int:
    if exc.http_status is not None:
        return exc.http_status
    for category, code in _STATUS_BY_CATEGORY:
        if isinstance(exc, category):
            return code
    return status.HTTP_400_BAD_REQUEST


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, errors.CortexError):
        return _CortexAPIException(exc, status_for(exc))
    if isinstance(exc, DjangoValidationError):
        detail: Any = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return drf.ValidationError(detail=detail)
    if isinstance(exc, Http404):
        return drf.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return drf.PermissionDenied()
    if isinstance(exc, ProtectedError):
        return _CortexAPIException(
            errors.Conflict(
                "The object is still referenced and cannot be deleted.", code="protected"
            ),
            status.HTTP_409_CONFLICT,
        )
    return exc


def _flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested validation detail into {"a.b": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten_fields(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(v, dict | list) for v in detail):
            out[prefix or "non_field_errors"] = [str(v) for v in detail]
        else:
            for index, value in enumerate(detail):
                out.update(_flatten_fields(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def error_body(
    code: str, message: str, fields: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Translate domain and Django errors, let DRF do its part, then reshape the body."""
    translated = _translate(exc)
    response = drf_exception_handler(translated, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        message = f"{type(exc).__name__}: {exc}" if settings.DEBUG else "Internal server error."
        return Response(error_body("server_error", message), status=500)

    if isinstance(translated, _CortexAPIException):
        cortex_error = translated.cortex_error
        response.data = error_body(cortex_error.code, cortex_error.message, cortex_error.fields)
    elif isinstance(translated, drf.ValidationError):
        response.data = error_body(
            "invalid_input", "Some fields are invalid.", _flatten_fields(translated.detail)
        )
    elif isinstance(translated, drf.APIException):
        code = next(
            (c for cls, c in _DRF_CODES.items() if isinstance(translated, cls)),
            str(getattr(translated, "default_code", "error")),
        )
        response.data = error_body(code, str(translated.detail))
    return response
