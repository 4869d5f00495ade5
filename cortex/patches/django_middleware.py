"""Django's session, common, authentication and message middleware, their hooks run on the loop.

The patch: `OnLoopHooks.__acall__` re-implements Django's
`django.utils.deprecation.MiddlewareMixin.__acall__` (the async half of Django's middleware
chain) so that hooks which only touch the request and response run inline instead of in the
sync thread. It must do what Django's does (process the request, call the next middleware,
process the response), so cortex/tests/test_patches.py holds Django's version and the source
of the method it re-implements to what it was written against (`RELIES_ON`,
`MIXIN_ACALL_SHA256`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponse
from django.middleware import common

LIBRARY = "Django"
PINNED_VERSION = "5.2.19"
RELIES_ON = (
    "django.utils.deprecation.MiddlewareMixin.__acall__",
    "django.contrib.sessions.middleware.SessionMiddleware.process_request",
    "django.contrib.sessions.middleware.SessionMiddleware.process_response",
    "django.middleware.common.CommonMiddleware.process_request",
    "django.middleware.common.CommonMiddleware.process_response",
    "django.contrib.auth.middleware.AuthenticationMiddleware.process_request",
    "django.contrib.messages.middleware.MessageMiddleware.process_request",
    "django.contrib.messages.middleware.MessageMiddleware.process_response",
    "django.contrib.messages.storage.base.BaseStorage",  # instances' `used`, `added_new`
)
#: sha256 of the source of `MiddlewareMixin.__acall__` in the pinned Django.
MIXIN_ACALL_SHA256 = "adf8cbcaf9f11e45c4ac1953556ac422f2a6fe4193df5edbed186b2b66bea729"


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


class CommonMiddleware(OnLoopHooks, common.CommonMiddleware):  # type: ignore[misc]  # async get_response
    pass


class AuthenticationMiddleware(OnLoopHooks, auth.AuthenticationMiddleware):  # type: ignore[misc]  # async get_response
    """Sets the lazy `request.user`; the user is loaded where it is first used."""


class SessionMiddleware(OnLoopHooks, sessions.SessionMiddleware):  # type: ignore[misc]  # async get_response
    """The session store is lazy; only a save (a modified session) needs the thread."""

    def hook_blocks(self, request: HttpRequest, response: HttpResponse | None) -> bool:
        session = getattr(request, "session", None)
        return response is not None and (
            settings.SESSION_SAVE_EVERY_REQUEST or bool(getattr(session, "modified", False))
        )


class MessageMiddleware(OnLoopHooks, messages.MessageMiddleware):  # type: ignore[misc]  # async get_response
    """Storing messages may load the session: only then does the response hook need the
    thread."""

    def hook_blocks(self, request: HttpRequest, response: HttpResponse | None) -> bool:
        storage = getattr(request, "_messages", None)
        return response is not None and bool(
            storage is not None and (storage.used or storage.added_new)
        )
