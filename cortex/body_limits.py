"""Request body limits enforced ahead of Django (pure ASGI), so a refused body is never read.

Django's ASGI handler reads the whole body into a spooled temporary file before any middleware
or view runs: without this layer an unauthenticated `Content-Length: 1 GiB` was written to disk
before anything could refuse it. Here the declared length is compared with the route's limit
and an oversize request is answered 413 `request_too_large` without reading a byte. A chunked
body (no length declared) is counted as it streams and refused as soon as the count passes the
limit: Django then sees a disconnect and drops what it holds.

One table of limits (`route_limits`): the default (`CORTEX_MAX_BODY_BYTES`, also Django's
`DATA_UPLOAD_MAX_MEMORY_SIZE`) and larger ones for the upload routes, read from the settings
that bound those uploads, plus room for the multipart framing. The default is at most
Django's spool threshold (`FILE_UPLOAD_MAX_MEMORY_SIZE`), so no refused body on an ordinary
route ever reaches the disk. Upload routes allow their large limit only to requests that carry
a credential at all (a bearer token or a session cookie); an anonymous one would be refused
401 anyway, so it gets the default and cannot make the hub spool a large body.

The layer only looks at the method, path and headers of each request (and wraps `receive` for
chunked bodies), so it costs next to nothing on ordinary requests.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Room for multipart boundaries, part headers and small form fields around an upload.
MULTIPART_ROOM = 1024 * 1024
#: Methods whose body is never wanted; any body on them is held to the default limit.
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


@functools.cache
def session_cookie() -> bytes:
    return f"{settings.SESSION_COOKIE_NAME}=".encode()


@functools.cache
def route_limits() -> tuple[int, tuple[tuple[re.Pattern[str], frozenset[str], int], ...]]:
    """(default limit, ((path pattern, methods, limit), ...)): the one table of body limits."""
    from preferences.services.transfer import MAX_IMPORT_BYTES

    default = int(settings.REQUEST_MAX_BODY_BYTES)
    voice = int(settings.VOICE_MAX_UPLOAD_BYTES) + MULTIPART_ROOM
    uploads = (
        (r"^/api/v1/nodes/[^/]+/files/$", int(settings.MESH_FILE_PUSH_MAX_BYTES) + MULTIPART_ROOM),
        (r"^/api/v1/stt/transcribe/$", voice),
        (
            r"^/api/v1/sessions/[^/]+/workspace/file/$",
            int(settings.WORKSPACE_MAX_FILE_BYTES) + MULTIPART_ROOM,
        ),
        (r"^/api/v1/sessions/[^/]+/messages/$", voice),
        (r"^/api/v1/preferences/import/$", max(default, MAX_IMPORT_BYTES + MULTIPART_ROOM)),
    )
    table = tuple((re.compile(p), frozenset({"POST", "PUT", "PATCH"}), n) for p, n in uploads)
    return default, table


def limit_for(method: str, path: str, *, credentialed: bool) -> int:
    """The most body bytes this request may send."""
    default, table = route_limits()
    if not credentialed or method in _NO_BODY_METHODS:
        return default
    for pattern, methods, limit in table:
        if method in methods and pattern.match(path):
            return limit
    return default


def _too_large(limit: int) -> tuple[Message, Message]:
    body = json.dumps(
        {
            "error": {
                "code": "request_too_large",
                "message": f"The request body is larger than this endpoint takes ({limit} bytes).",
            }
        }
    ).encode()
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


def _bad_length() -> tuple[Message, Message]:
    body = b'{"error": {"code": "malformed_request", "message": "Invalid Content-Length."}}'
    start = {
        "type": "http.response.start",
        "status": 400,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class BodyLimitMiddleware:
    """ASGI middleware: 413 for a body over its route's limit, before the app reads any of it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: bytes | None = None
        chunked = credentialed = False
        cookie = session_cookie()
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"authorization" or (name == b"cookie" and cookie in value):
                credentialed = True
        if length is None and not chunked:
            await self.app(scope, receive, send)  # no body at all (HTTP/1.1)
            return
        limit = limit_for(scope["method"], scope["path"], credentialed=credentialed)
        if length is not None:
            if not length.isdigit():
                await self._answer(send, *_bad_length())
                return
            if int(length) > limit:
                await self._answer(send, *_too_large(limit))
                return
            await self.app(scope, receive, send)
            return
        await _Counted(self.app, limit).run(scope, receive, send)

    @staticmethod
    async def _answer(send: Send, start: Message, body: Message) -> None:
        await send(start)
        await send(body)


class _Counted:
    """One chunked request: its body counted as the app receives it."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit
        self.seen = 0
        self.refused = False
        self.started = False

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            if self.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.seen += len(message.get("body", b""))
                if self.seen > self.limit:
                    # Answer now; the app sees the client gone and drops what it holds.
                    self.refused = True
                    if not self.started:
                        self.started = True
                        start, body = _too_large(self.limit)
                        await send(start)
                        await send(body)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self.refused:
                return  # the 413 has been sent; nothing else goes out
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)
