"""Static files (the console's, the admin's, the API docs') answered at the ASGI layer.

ServeStatic's Django integration decides which files exist (the apps' static folders while
DEBUG, the collected manifest otherwise) and which names are hashed (cached for a year, busted
when the content changes); its ASGI file server streams them, with the gzip or Brotli copy the
browser accepts, before Django sees the request: a static file costs no middleware, no
database hop and no request thread. The same wrapper serves `manage.py serve`, daphne and the
image, since all three run `cortex.asgi:application`.
"""

from __future__ import annotations

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
    """ASGI middleware: known static URLs are streamed by ServeStatic, the rest go to `app`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.table = _StaticFileTable()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] == "http":
            static_file = self.table.files.get(decode_path_info(scope["path"]))
            if static_file is not None:
                return await FileServerASGI(static_file)(scope, receive, send)
        return await self.app(scope, receive, send)


def with_static_files(app: Any) -> StaticFilesASGI:
    """Wrap an ASGI application so it serves the project's static files first."""
    return StaticFilesASGI(app)
