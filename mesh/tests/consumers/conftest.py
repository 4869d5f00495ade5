"""Helpers of the consumer tests: the real ASGI application, cookies and tickets."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

ORIGIN = (b"origin", b"http://testserver")


@database_sync_to_async
def login_cookie(user: Any) -> bytes:
    """A real browser session for `user`, as a Cookie header value."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(
    path: str, cookie: bytes | None = None, *, origin: bytes | None = b"http://testserver"
) -> WebsocketCommunicator:
    from cortex.asgi import application

    headers: list[tuple[bytes, bytes]] = []
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


async def refused_with(ws: WebsocketCommunicator, *, timeout: float = 5) -> int:
    """A refused connect: the handshake completes, then the server closes at once (no frame).

    Returns the close code; a close before accept (an HTTP 403 to real clients) fails.
    """
    connected, code = await ws.connect(timeout=timeout)
    assert connected is True, f"closed before accept with {code}"
    message = await ws.receive_output(timeout=timeout)
    assert message["type"] == "websocket.close", message
    # The server then hears the socket go, as it would from a real server; without it the
    # consumer waits for that disconnect and `wait` silently sits out its whole timeout.
    await ws.disconnect(code=int(message["code"]), timeout=timeout)
    return int(message["code"])


async def frames_until(
    ws: WebsocketCommunicator, kind: str, *, timeout: float = 10
) -> list[dict[str, Any]]:
    """Frames received up to and including the first of type `kind`."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = await ws.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] == kind:
            return frames


async def closed_code(ws: WebsocketCommunicator, *, timeout: float) -> int:
    """Wait for the server to close, skipping data frames; returns the close code."""
    import asyncio

    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_output(timeout=timeout)
            if message["type"] == "websocket.close":
                return int(message["code"])


@pytest.fixture
def fast_recheck(settings: Any) -> None:
    settings.WS_RECHECK_SECONDS = 0.2


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def channel_layer_kind(request: Any, settings: Any) -> str:
    """Both layers: in-memory (`serve`) and Redis pub/sub (daphne and runmesh processes)."""
    if request.param == "redis":
        import uuid

        redis_url = request.getfixturevalue("redis_url")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [redis_url], "prefix": f"t{uuid.uuid4().hex[:8]}"},
            }
        }
    return request.param
