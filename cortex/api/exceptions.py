"""The one HTTP exception handler: wraps DRF's own and reshapes every error body.

Body: {"error": {"code", "message", "fields"?}}; `fields` only for validation errors.
Bad input that Django or the parsers reject (a body too large, too many multipart fields or
files, nesting too deep to parse) is a 4xx with a stable code. No error body ever carries
exception text, in DEBUG either: an unexpected error is logged and answers a generic 500.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
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


class RequestTooLarge(errors.ValidationFailed):
    code = "request_too_large"
    default_message = "The request body is larger than this endpoint accepts."
    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class TooManyFields(errors.ValidationFailed):
    code = "too_many_fields"
    default_message = "The request has too many form fields."


class TooManyFiles(errors.ValidationFailed):
    code = "too_many_files"
    default_message = "The request has too many files."
    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class TooDeeplyNested(errors.ValidationFailed):
    code = "too_deeply_nested"
    default_message = "The request body is nested too deeply to read."


class BadRequest(errors.ValidationFailed):
    code = "bad_request"
    default_message = "The request could not be understood."


def django_input_error(exc: BaseException) -> errors.CortexError | None:
    """The domain error for input Django or a parser refused (None: not such an error)."""
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, TooManyFieldsSent):
        return TooManyFields()
    if isinstance(exc, TooManyFilesSent):
        return TooManyFiles()
    if isinstance(exc, RecursionError):
        return TooDeeplyNested()
    if isinstance(exc, SuspiciousOperation):
        return BadRequest()
    return None


class _CortexAPIException(drf.APIException):
    """A CortexError carried through DRF's handler with its status and code."""

    def __init__(self, exc: errors.CortexError, status_code: int) -> None:
        super().__init__(detail=exc.message, code=exc.code)
        self.status_code = status_code
        self.cortex_error = exc
        if exc.retry_after is not None:
            self.wait = exc.retry_after


def outage_error(exc: BaseException | None) -> errors.CortexError | None:
    """A dependency outage (database, Redis) as its 503 error, counted; None for the rest."""
    from cortex import faults, metrics

    error = faults.unavailable_for(exc)
    if error is not None:
        dependency = "database" if isinstance(error, faults.DatabaseUnavailable) else "redis"
        metrics.DEPENDENCY_UNAVAILABLE.labels(dependency=dependency).inc()
        logger.warning("%s unavailable: %s", dependency, type(exc).__name__)
    return error


def status_for(exc: errors.CortexError) -> int:
    if exc.http_status is not None:
        return exc.http_status
    for category, code in _STATUS_BY_CATEGORY:
        if isinstance(exc, category):
            return code
    return status.HTTP_400_BAD_REQUEST


def _translate(exc: Exception) -> Exception:
    exc = django_input_error(exc) or outage_error(exc) or exc
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
        return Response(error_body("server_error", "Internal server error."), status=500)

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
        message = str(translated.detail)
        if isinstance(translated, drf.ParseError):
            # DRF's parsers append the exception text ("JSON parse error - Expecting ..."):
            # only the part before it goes out.
            message = message.split(" - ", 1)[0]
        response.data = error_body(code, message)
    return response
