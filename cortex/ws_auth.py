"""WebSocket authentication: a single-use `?ticket=` (scripts) or the session cookie (browsers).

A connect that carries a ticket is authenticated by that ticket alone: a bad, used or expired
ticket leaves the scope anonymous even if a session cookie is present, so a script never runs
under someone else's browser session by accident.

The scope gets what Channels' `CookieMiddleware(SessionMiddleware(AuthMiddleware(...)))` gives
(`cookies`, `session`, `user`), built in one step: that stack copies the scope and keeps a
suspended coroutine at each of its layers for the socket's whole life, and its session layer
wraps `send` to save a modified session on `http.response.start`, which a WebSocket never sends,
yet it ran on every outgoing frame.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware, UserLazyObject, get_user
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import parse_cookie

from cortex import faults


def _ticket_of(scope: dict[str, Any]) -> str | None:
    raw = scope.get("query_string", b"")
    query = parse_qs(raw.decode("latin-1") if isinstance(raw, bytes) else str(raw))
    values = query.get("ticket")
    return values[0] if values else None


@database_sync_to_async
def _redeem(ticket: str) -> Any:
    from accounts.services import ws_ticket_redeem

    return ws_ticket_redeem(ticket=ticket) or AnonymousUser()


def _cookies(scope: dict[str, Any]) -> dict[str, str]:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            return parse_cookie(value.decode("latin1"))
    return {}


class WebSocketAuthMiddleware:
    """Cookie + session + ticket-or-session authentication for WebSocket scopes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        # Anything but a WebSocket (not routed here by cortex.asgi) gets Channels' own stack.
        self.other = CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.other(scope, receive, send)
        cookies = _cookies(scope)
        store = import_module(settings.SESSION_ENGINE).SessionStore
        user = UserLazyObject()
        scope = {
            **scope,
            "cookies": cookies,
            "session": store(cookies.get(settings.SESSION_COOKIE_NAME)),
            "user": user,
        }
        ticket = _ticket_of(scope)
        try:
            if ticket is None:
                user._wrapped = await get_user(scope)
            else:
                user._wrapped = await _redeem(ticket)
                scope["auth_method"] = "ticket"
        except Exception as exc:
            if faults.unavailable_for(exc) is None:
                raise
            return await _close_try_again(receive, send)
        return await self.inner(scope, receive, send)


async def _close_try_again(receive: Any, send: Any) -> None:
    """The database is down, so nobody can be signed in: accept and close with 1013 (try
    again later) instead of failing the handshake with a server error."""
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1013})
