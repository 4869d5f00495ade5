"""HTTP middleware shared by the whole project."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponse
from django.middleware import common

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


class OnLoopHooks:
    """Run a Django `MiddlewareMixin`'s request and response hooks on the event loop.

    Under ASGI, `MiddlewareMixin` runs each hook in the sync thread: two thread hops per
    middleware, about 1.4 ms per request for the stack in settings. The hooks of the classes
    below touch only the request and response objects, so they run inline; a hook that may
    reach the database (`hook_blocks`) still goes to the thread, as Django would send it.
    (Django's security, CSRF and clickjacking middleware would qualify too, but the deploy
    checks recognise only their own paths.)
    """

    get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]

    def hook_blocks(self, request: HttpRequest, response: HttpResponse | None) -> bool:
        """Whether the hook about to run (the response hook when `response` is given) may do
        I/O and so must run in the sync thread."""
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = None
        if hasattr(self, "process_request"):
            if self.hook_blocks(request, None):
                response = await sync_to_async(self.process_request, thread_sensitive=True)(request)
            else:
                response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.hook_blocks(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(
                    request, response
                )
            else:
                response = self.process_response(request, response)
        return response


class CommonMiddleware(OnLoopHooks, common.CommonMiddleware):
    pass


class AuthenticationMiddleware(OnLoopHooks, auth.AuthenticationMiddleware):
    """Sets the lazy `request.user`; the user is loaded where it is first used."""


class SessionMiddleware(OnLoopHooks, sessions.SessionMiddleware):
    """The session store is lazy; only a save (a modified session) needs the thread."""

    def hook_blocks(self, request: HttpRequest, response: HttpResponse | None) -> bool:
        session = getattr(request, "session", None)
        return response is not None and (
            settings.SESSION_SAVE_EVERY_REQUEST or bool(getattr(session, "modified", False))
        )


class MessageMiddleware(OnLoopHooks, messages.MessageMiddleware):
    """Storing messages may load the session: only then does the response hook need the
    thread."""

    def hook_blocks(self, request: HttpRequest, response: HttpResponse | None) -> bool:
        storage = getattr(request, "_messages", None)
        return response is not None and bool(
            storage is not None and (storage.used or storage.added_new)
        )
