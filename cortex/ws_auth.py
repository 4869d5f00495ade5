"""WebSocket authentication: the browser's session cookie (Channels' AuthMiddleware).

The accounts app extends this with single-use tickets (`?ticket=`) for scripts.
"""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter


def WebSocketAuthMiddleware(inner: URLRouter):  # noqa: N802, ANN201  # reads like a class in asgi.py
    """Session-cookie authentication for WebSocket scopes."""
    return AuthMiddlewareStack(inner)
