"""Refused WebSocket connects: accepted, audited (aggregated), then closed with 4401 or 4403.

A close before accept reaches the client as an HTTP 403 without a code, which the README does
not promise and a client cannot tell apart from a proxy error. So every refusal completes the
handshake and closes at once with the documented code; nothing else is ever sent on it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import OriginValidator
from django.conf import settings

logger = logging.getLogger("cortex.ws")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
REFUSED_ACTION = "ws.connect.refused"


@database_sync_to_async
def _audit(scope: Mapping[str, Any], code: int, reason: str) -> None:
    from accounts.context import AuditContext
    from accounts.services import audit_refusal

    user = scope.get("user")
    path = str(scope.get("path", ""))[:255]
    audit_refusal(  # never the query string: it may carry a ticket
        actor=user if user is not None and getattr(user, "is_authenticated", False) else None,
        action=REFUSED_ACTION,
        reason=reason,
        target_type="websocket",
        target_id=path,
        audit_context=AuditContext.from_scope(scope, "ws"),
        details={"path": path, "close_code": code},
    )


async def refuse_socket(consumer: AsyncWebsocketConsumer, *, code: int, reason: str) -> None:
    """Audit the refusal, then accept and close with `code` (4401 or 4403).

    The socket is refused even when the audit write fails (database down): logged, not raised.
    """
    try:
        await _audit(consumer.scope, code, reason)
    except Exception:  # the refusal must not depend on the audit succeeding
        logger.warning("could not audit a refused WebSocket (%s)", reason, exc_info=True)
    await consumer.accept()
    await consumer.close(code=code)


class _OriginRefuser(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await refuse_socket(self, code=CLOSE_FORBIDDEN, reason="bad_origin")


class RefusingOriginValidator(OriginValidator):
    """Channels' origin check, refusing a bad origin with a 4403 close instead of HTTP 403."""

    application: Any  # an ASGI 3 application (the stubs also allow ASGI 2)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("RefusingOriginValidator is for WebSocket connections only.")
        parsed_origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                try:
                    parsed_origin = urlparse(value.decode("latin1"))
                except UnicodeDecodeError:
                    parsed_origin = None
        if self.valid_origin(parsed_origin):
            return await self.application(scope, receive, send)
        return await _OriginRefuser.as_asgi()(scope, receive, send)


def AllowedHostsRefusingOriginValidator(application: Any) -> RefusingOriginValidator:  # noqa: N802
    """Like Channels' `AllowedHostsOriginValidator`: origins must be in ALLOWED_HOSTS."""
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return RefusingOriginValidator(application, allowed_hosts)
