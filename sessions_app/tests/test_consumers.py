"""`/ws/sessions/{id}/` through the real ASGI application, router and auth middleware."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from mesh.tests.consumers.conftest import refused_with
from providers.tests.llm_server import openai_text
from sessions_app.tests.conftest import configure_llm

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


@database_sync_to_async
def _login_cookie(user: Any) -> bytes:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@database_sync_to_async
def _make_session(user: Any) -> Any:
    from sessions_app.services import session_create

    return session_create(actor=user, title="ws")


@database_sync_to_async
def _post(user: Any, session: Any, content: str) -> tuple[int, int]:
    from sessions_app.services import message_post

    asked, answer = message_post(actor=user, session=session, content=content)
    return asked.pk, answer.pk


def _communicator(session_id: int, cookie: bytes | None, query: str = "") -> WebsocketCommunicator:
    from cortex.asgi import application

    headers = [ORIGIN] + ([(b"cookie", cookie)] if cookie else [])
    return WebsocketCommunicator(application, f"/ws/sessions/{session_id}/{query}", headers=headers)


async def _frames_until_done(ws: WebsocketCommunicator) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while True:
            frame = await ws.receive_json_from(timeout=20)
            frames.append(frame)
            if frame["type"] == "message.done" and frame.get("final"):
                return frames


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def channel_layer_kind(request: Any, settings: Any) -> str:
    """Both layers: in-memory (`serve`) and Redis pub/sub (daphne processes)."""
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


async def test_live_deltas_in_order_then_replay(user, llm_server, fast_turns, channel_layer_kind):
    from channels.layers import get_channel_layer

    layer = "RedisPubSubChannelLayer" if channel_layer_kind == "redis" else "InMemoryChannelLayer"
    assert type(get_channel_layer()).__name__ == layer
    await database_sync_to_async(configure_llm)(user, llm_server)
    llm_server.add(openai_text(["One ", "two ", "three ", "four"], delay=0.1))
    session = await _make_session(user)
    cookie = await _login_cookie(user)

    ws = _communicator(session.pk, cookie)
    connected, _ = await ws.connect()
    assert connected
    try:
        _, answer_id = await _post(user, session, "count")
        frames = await _frames_until_done(ws)
    finally:
        await ws.disconnect()

    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(1, len(frames) + 1))
    deltas = [f for f in frames if f["type"] == "message.delta"]
    assert len(deltas) >= 2
    assert "".join(f["delta"] for f in deltas) == "One two three four"
    assert {f["message_id"] for f in frames} == {answer_id}
    assert frames[-1]["content"] == "One two three four"

    again = _communicator(session.pk, cookie, "?after_seq=2")
    connected, _ = await again.connect()
    assert connected
    try:
        replay = [await again.receive_json_from(timeout=5) for _ in range(len(frames) - 2)]
        assert await again.receive_nothing(timeout=0.2)
    finally:
        await again.disconnect()
    assert replay == frames[2:]


async def test_anonymous_is_refused_with_4401(user):
    session = await _make_session(user)
    ws = _communicator(session.pk, None)
    assert await refused_with(ws) == 4401


async def test_other_users_session_is_refused(user, make_user):
    other = await database_sync_to_async(make_user)("mallory@example.com")
    session = await _make_session(user)
    ws = _communicator(session.pk, await _login_cookie(other))
    assert await refused_with(ws) == 4403
    missing = _communicator(999999, await _login_cookie(user))
    assert await refused_with(missing) == 4403


async def test_bad_origin_is_refused(user):
    from cortex.asgi import application

    session = await _make_session(user)
    ws = WebsocketCommunicator(
        application,
        f"/ws/sessions/{session.pk}/",
        headers=[(b"origin", b"http://evil.example"), (b"cookie", await _login_cookie(user))],
    )
    assert await refused_with(ws) == 4403


async def test_a_dropped_doorbell_is_filled_from_the_database(user):
    from sessions_app.services.events import event_append, frame_broadcast

    session = await _make_session(user)
    ws = _communicator(session.pk, await _login_cookie(user))
    connected, _ = await ws.connect()
    assert connected
    try:
        append = database_sync_to_async(event_append)
        await append(session_id=session.pk, type="message.delta", payload={"delta": "lost "})
        second = await append(session_id=session.pk, type="message.delta", payload={"delta": "ok"})
        await frame_broadcast(session_id=session.pk, frame=second)
        first_seen = await ws.receive_json_from(timeout=5)
        second_seen = await ws.receive_json_from(timeout=5)
        await frame_broadcast(session_id=session.pk, frame=second)  # a duplicate is skipped
        assert await ws.receive_nothing(timeout=0.2)
        await ws.send_json_to({"type": "run"})
        refused = await ws.receive_json_from(timeout=5)
    finally:
        await ws.disconnect()
    assert first_seen == {"type": "message.delta", "seq": 1, "delta": "lost "}
    assert second_seen == {"type": "message.delta", "seq": 2, "delta": "ok"}
    assert refused["type"] == "error"
    assert refused["error"]["code"] == "unsupported_frame"
