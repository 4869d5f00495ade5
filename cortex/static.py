"""Static files (the console's, the admin's, the API docs') answered at the ASGI layer.

ServeStatic's Django integration decides which files exist (the apps' static folders while
DEBUG, the collected manifest otherwise) and which names are hashed (cached for a year, busted
when the content changes); its ASGI file server answers, with the gzip or Brotli copy the
browser accepts, before Django sees the request: a static file costs no middleware and no
database hop. The same wrapper serves `manage.py serve`, daphne and the image, since all three
run `cortex.asgi:application`.

No thread per request either: ServeStatic reads a file through a one-thread pool of its own
unless the server offers `http.response.pathsend`, which neither uvicorn nor daphne does. So the
wrapper offers it and answers each such send with the file's bytes, read once into memory
(static files are few and small; past `CACHE_BYTES` a file is read from disk each time). Only
a Range request still goes through ServeStatic's reader.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from servestatic.asgi import FileServerASGI
from servestatic.middleware import ServeStaticMiddleware
from servestatic.utils import decode_path_info


async def _never_called(request: HttpRequest) -> HttpResponseBase:  # pragma: no cover
    raise AssertionError("the static file table is never used as Django middleware")


class _StaticFileTable(ServeStaticMiddleware):
    """ServeStatic's view of Django's static files, with the hub's headers on each file."""

    def __init__(self) -> None:
        super().__init__(get_response=_never_called)

    def add_mime_headers(self, headers: Any, path: str, url: str) -> None:
        super().add_mime_headers(headers, path, url)
        # Same as the pages: a browser never guesses a script out of a text file.
        headers["X-Content-Type-Options"] = "nosniff"


class StaticFilesASGI:
    """ASGI middleware: known static URLs are answered by ServeStatic, the rest go to `app`."""

    CACHE_BYTES = 64 * 1024 * 1024

    def __init__(self, app: Any) -> None:
        self.app = app
        self.table = _StaticFileTable()
        self._bodies: dict[str, bytes] = {}
        self._cache_left = self.CACHE_BYTES

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] == "http":
            static_file = self.table.files.get(decode_path_info(scope["path"]))
            if static_file is not None:
                extensions = {**(scope.get("extensions") or {}), "http.response.pathsend": {}}
                scope = {**scope, "extensions": extensions}
                return await FileServerASGI(static_file)(scope, receive, self._sender(send))
        return await self.app(scope, receive, send)

    def _sender(self, send: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def sender(event: Any) -> None:
            if event["type"] == "http.response.pathsend":
                event = {"type": "http.response.body", "body": self._body(event["path"])}
            await send(event)

        return sender

    def _body(self, path: str) -> bytes:
        """The file's bytes; `path` is one of ServeStatic's own (a file in its table)."""
        body = self._bodies.get(path)
        if body is None:
            with open(path, "rb") as handle:  # local, small, and read once: no thread hop
                body = handle.read()
            if len(body) <= self._cache_left:
                self._bodies[path] = body
                self._cache_left -= len(body)
        return body


def with_static_files(app: Any) -> StaticFilesASGI:
    """Wrap an ASGI application so it serves the project's static files first."""
    return StaticFilesASGI(app)
