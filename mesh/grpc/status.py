"""The one table from domain errors to gRPC status codes, and the one abort wrapper."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import grpc

from cortex import errors

logger = logging.getLogger("cortex.mesh.grpc")

ERROR_CODE_KEY = "cortex-error-code"

_TABLE: list[tuple[type[errors.CortexError], grpc.StatusCode]] = [
    (errors.ValidationFailed, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotAuthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Throttled, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def status_for(exc: BaseException) -> grpc.StatusCode:
    for category, code in _TABLE:
        if isinstance(exc, category):
            return code
    return grpc.StatusCode.INTERNAL


async def abort_with(context: grpc.aio.ServicerContext, exc: BaseException) -> NoReturn:
    """Abort the call with the status for `exc`; our stable code rides in trailing metadata."""
    if isinstance(exc, errors.CortexError):
        code, message, error_code = status_for(exc), exc.message, exc.code
    else:
        logger.error("unexpected error in a gRPC call", exc_info=exc)
        code, message, error_code = grpc.StatusCode.INTERNAL, "Internal error.", "internal_error"
    await context.abort(code, message, trailing_metadata=((ERROR_CODE_KEY, error_code),))
    raise AssertionError("unreachable")  # pragma: no cover - abort always raises


async def abort_code(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, error_code: str
) -> NoReturn:
    await context.abort(code, message, trailing_metadata=((ERROR_CODE_KEY, error_code),))
    raise AssertionError("unreachable")  # pragma: no cover


def metadata_dict(metadata: Any) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in metadata or ():
        key, value = item[0], item[1]
        result[str(key).lower()] = value.decode() if isinstance(value, bytes) else str(value)
    return result
