"""HTTP middleware shared by the whole project (Django's own, run on the loop, live in
`cortex.patches.django_middleware`)."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from cortex.logging import request_id_var

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Give every request an id (a sane incoming X-Request-ID is kept) for logs and responses.

    Async-capable so that it adds no thread hop under ASGI.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _begin(self, request: HttpRequest) -> contextvars.Token[str]:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = rid  # type: ignore[attr-defined]
        return request_id_var.set(rid)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        token = self._begin(request)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined, index]
            return response
        finally:
            request_id_var.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        token = self._begin(request)
        try:
            response = await self.get_response(request)  # type: ignore[misc]
            response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
            return response
        finally:
            request_id_var.reset(token)


class ApiErrorMiddleware:
    """Every error under /api/ answers the shared error body, whatever raised it.

    DRF views translate their own exceptions. For the rest, `process_exception` maps an
    exception from a view (with its precise status: 413 for a body too large), and any error
    response that is not JSON by the time it passes here (Django's technical pages under DEBUG,
    which carry exception text, or its HTML error pages for a middleware's exception) is
    replaced by the shared body for its status. Ordinary responses pay one status check.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        return _json_errors(request, self.get_response(request))  # type: ignore[arg-type]

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return _json_errors(request, await self.get_response(request))  # type: ignore[misc]

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        from cortex.api.views import api_error_response

        return api_error_response(exception, request)


def _json_errors(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if response.status_code < 400:
        return response
    outage = getattr(request, OUTAGE_ATTR, None)
    if outage is not None and response.status_code == 500:
        # A dependency was down (`mark_outage`): 503 with Retry-After on every path, whatever
        # raised it (a view, a middleware, a template), never a 500 with its text.
        from cortex.api.views import outage_response

        return outage_response(outage)
    if not request.path.startswith("/api/"):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    if response.has_header("X-Cortex-Error"):
        return response  # one of ours on purpose (an install script that prints the refusal)
    from cortex.api.views import api_error_for_status

    return api_error_for_status(response.status_code)


#: Set on a request by `mark_outage` when what failed it was a dependency outage.
OUTAGE_ATTR = "_cortex_outage"


def mark_outage(sender: object, request: HttpRequest | None = None, **kwargs: object) -> None:
    """`got_request_exception` receiver: remember that the request failed for an outage.

    Django turns an exception from a view or a middleware into a 500 response (or, under
    DEBUG, a technical page) where it happens; this mark lets `ApiErrorMiddleware`, further
    out, answer 503 `database_unavailable` instead.
    """
    import sys

    from cortex.api.exceptions import outage_error

    error = outage_error(sys.exc_info()[1])
    if error is not None and request is not None:
        setattr(request, OUTAGE_ATTR, error)
