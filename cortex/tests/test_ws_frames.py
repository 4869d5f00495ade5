"""WebSocket input that cannot be parsed gets `invalid_frame`; an unknown path closes 4404."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

ORIGIN = (b"origin", b"http://testserver")
UNPARSABLE: list[dict[str, Any]] = [
    {"text_data": "not json"},
    {"text_data": "[1, 2]"},
    {"text_data": '"a string"'},
    {"text_data": '{"seq": 1}'},
    {"text_data": '{"type": 7}'},
    {"text_data": "[" * 60000 + "]" * 5000},
    {"text_data": '{"a":' * 10000 + "1" + "}" * 10000},
    {"bytes_data": b"\x00\x01binary"},
]


@database_sync_to_async
def _cookie(user: Any) -> tuple[bytes, bytes]:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


@database_sync_to_async
def _session_of(user: Any) -> int:
    from sessions_app.services import session_create

    return session_create(actor=user, title="t").pk


def _socket(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    from cortex.asgi import application

    return WebsocketCommunicator(application, path, headers=[ORIGIN, *headers])


async def _assert_every_bad_frame_is_invalid(ws: WebsocketCommunicator) -> None:
    for frame in UNPARSABLE:
        await ws.send_to(**frame)
        reply = await ws.receive_json_from(timeout=5)
        assert reply["type"] == "error", frame
        assert reply["error"]["code"] in ("invalid_frame", "frame_too_large"), (frame, reply)
    # The socket is still open and answering.
    await ws.send_json_to({"type": "no.such.type"})
    reply = await ws.receive_json_from(timeout=5)
    assert reply["error"]["code"] == "unsupported_frame"


@pytest.mark.django_db(transaction=True)
async def test_unparsable_frames_on_a_node_list_socket(user):
    ws = _socket("/ws/me/", await _cookie(user))
    try:
        assert (await ws.connect(timeout=5))[0] is True
        await ws.receive_json_from(timeout=5)  # the snapshot
        await _assert_every_bad_frame_is_invalid(ws)
    finally:
        await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_unparsable_frames_on_a_session_socket(user):
    session_id = await _session_of(user)
    ws = _socket(f"/ws/sessions/{session_id}/", await _cookie(user))
    try:
        assert (await ws.connect(timeout=5))[0] is True
        await _assert_every_bad_frame_is_invalid(ws)
    finally:
        await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/ws/nope/", "/ws/nodes/", "/api/v1/nodes/", "/"])
async def test_an_unknown_path_is_accepted_then_closed_4404(user, path):
    for headers in ([], [await _cookie(user)]):
        ws = _socket(path, *headers)
        try:
            connected, _ = await ws.connect(timeout=5)
            assert connected is True
            assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
        finally:
            await ws.disconnect()
