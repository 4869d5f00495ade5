"""WebSocket authentication: a single-use `?ticket=` (scripts) or the session cookie (browsers).

A connect that carries a ticket is authenticated by that ticket alone: a bad, used or expired
ticket leaves the scope anonymous even if a session cookie is present, so a script never runs
under someone else's browser session by accident.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser


def _ticket_of(scope: dict[str, Any]) -> str | None:
    raw = scope.get("query_string", b"")
    query = parse_qs(raw.decode("latin-1") if isinstance(raw, bytes) else str(raw))
    values = query.get("ticket")
    return values[0] if values else None


@database_sync_to_async
def _redeem(ticket: str) -> Any:
    from accounts.services import ws_ticket_redeem

    return ws_ticket_redeem(ticket=ticket) or AnonymousUser()


class TicketOrSessionAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, with a `?ticket=` taking precedence over the session."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        ticket = _ticket_of(scope)
        if ticket is None:
            await super().resolve_scope(scope)
            return
        scope["user"]._wrapped = await _redeem(ticket)
        scope["auth_method"] = "ticket"


def WebSocketAuthMiddleware(inner: URLRouter | Any):  # noqa: N802, ANN201  # reads like a class in asgi.py
    """Cookie + session + ticket-or-session authentication for WebSocket scopes."""
    return CookieMiddleware(SessionMiddleware(TicketOrSessionAuthMiddleware(inner)))
