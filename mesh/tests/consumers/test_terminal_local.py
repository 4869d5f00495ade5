"""Keystrokes and output skip the channel layer when the socket and the node's stream share a
process (mesh/services/terminal_local.py), on the real router and a real NodeConnection: the
layer carries nothing on the in-memory layer and a marked copy on Redis (for other processes),
which this process drops; order holds (a keystroke never overtakes its session's open; a gap
in direct frames is filled from storage)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from cortex.testing import wait_until_async
from mesh import events
from mesh.agent.pb import mesh_pb2
from mesh.grpc import terminal_stream
from mesh.grpc.connection import NodeConnection
from mesh.grpc.hub import StreamHub
from mesh.models import NodeStatus
from mesh.services import terminal_local, terminals
from mesh.tests.consumers.conftest import communicator, frames_until, login_cookie

pytestmark = pytest.mark.django_db(transaction=True)
NODE = "term-local"
PATH = f"/ws/nodes/{NODE}/terminal/"


@pytest.fixture
def node(user, make_node, grant):  # type: ignore[no-untyped-def]
    found, _ = make_node(NODE)
    found.status = NodeStatus.ONLINE
    found.save(update_fields=["status"])
    grant(user, found)
    return found


def _connection() -> NodeConnection:
    """A real stream object whose outbox the test reads (its writer never runs), past Hello
    (keystrokes wait for Hello's part of a stream to be sent)."""
    conn = NodeConnection(StreamHub(), NODE, context=None)  # type: ignore[arg-type]
    terminal_stream._stream(conn).joined = True
    return conn


def _queued(conn: NodeConnection) -> list[mesh_pb2.HubMessage]:
    items = conn.outbox._items
    return [m for m in (items or ()) if m is not None]


async def _layer_messages(channel: str) -> list[dict[str, Any]]:
    """What the layer delivered to `channel` so far (in-memory layer: its queue, no waiting)."""
    layer = get_channel_layer()
    queue = layer.channels.get(channel)
    out = []
    while queue is not None and not queue.empty():
        out.append(queue.get_nowait()[1])
    return out


async def test_a_keystroke_reaches_a_local_stream_without_the_layer(  # type: ignore[no-untyped-def]
    node, user, channel_layer_kind
):
    conn = _connection()
    sink = terminal_stream.attach(conn)
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.group_name(events.NODE_GROUP, node_id=NODE), listener)
    ws = communicator(PATH, await login_cookie(user))
    try:
        assert (await ws.connect(timeout=5))[0] is True
        await ws.send_json_to({"type": "terminal.open", "cols": 80, "rows": 24})
        session = (await frames_until(ws, "terminal.opened"))[-1]["session"]
        await ws.send_json_to({"type": "terminal.input", "data": "ls\n"})
        await wait_until_async(lambda: any(m.HasField("terminal_input") for m in _queued(conn)))
        kinds = [m.WhichOneof("body") for m in _queued(conn)]
        # The open (read from the database) goes first, then the keystroke, once each.
        assert kinds == ["terminal_open", "terminal_input"]
        typed = _queued(conn)[1].terminal_input
        assert (typed.session_id, typed.data) == (session, b"ls\n")
        if channel_layer_kind == "memory":  # no other process: the layer carries no keystroke
            # ... only the open's bell and, once the keystroke is stored, its "stored" bell,
            # which this stream answers without typing it again.
            rung: list[dict[str, Any]] = []

            async def stored_rung() -> bool:
                rung.extend(await _layer_messages(listener))
                return any(m["reason"] == terminals.RING_TERMINAL_STORED for m in rung)

            await wait_until_async(stored_rung)
            assert [m["reason"] for m in rung] == [
                terminals.RING_TERMINAL,
                terminals.RING_TERMINAL_STORED,
            ]
            await terminal_stream.answer(conn, rung[1])
            assert [m.WhichOneof("body") for m in _queued(conn)] == kinds
        else:  # other processes get a copy marked as served here; this process drops it
            async with asyncio.timeout(30):
                copy = await layer.receive(listener)
                while copy["reason"] != terminals.RING_TERMINAL_INPUT:
                    copy = await layer.receive(listener)
            assert terminal_local.from_here(copy)
            await terminal_stream.answer(conn, copy)
            assert [m.WhichOneof("body") for m in _queued(conn)] == kinds
    finally:
        await ws.disconnect()
        terminal_stream.detach(conn, sink)
    assert terminal_local.counts() == {"streams": 0, "watchers": 0}


async def test_a_keystroke_from_another_process_is_typed(node):  # type: ignore[no-untyped-def]
    conn = _connection()
    message = {
        "type": events.DOORBELL,
        "reason": terminals.RING_TERMINAL_INPUT,
        "node_id": NODE,
        "session": "s-1",
        "data": "q",
        "key": "writer-elsewhere.1",
    }
    await terminal_stream.answer(conn, {**message, "via": "another-process"})
    assert [m.terminal_input.data for m in _queued(conn)] == [b"q"]


async def test_output_reaches_a_local_socket_in_order_and_fills_gaps(  # type: ignore[no-untyped-def]
    node, user, channel_layer_kind
):
    ws = communicator(PATH, await login_cookie(user))
    assert (await ws.connect(timeout=5))[0] is True
    await ws.send_json_to({"type": "terminal.open", "cols": 80, "rows": 24})
    session = (await frames_until(ws, "terminal.opened"))[-1]["session"]
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(terminals.terminal_group(session), listener)

    def frame(seq: int, data: str) -> dict[str, Any]:
        return {"type": "terminal.output", "seq": seq, "data": data}

    await terminals.terminal_output_publish(session_id=session, frame=frame(1, "one "))
    # Chunk 2 is stored but its live frame was lost: the socket reads it from storage.
    chunk = terminals.TerminalChunkIn(session, 2, 0.1, b"two ")
    await database_sync_to_async(terminals.terminal_output_store)(node_id=NODE, chunks=[chunk])
    await terminals.terminal_output_publish(session_id=session, frame=frame(3, "three"))
    seen = []
    while not seen or seen[-1][0] < 3:
        got = await ws.receive_json_from(timeout=10)
        seen.append((got["seq"], got["data"]))
    assert seen == [(1, "one "), (2, "two "), (3, "three")]
    if channel_layer_kind == "memory":
        assert await _layer_messages(listener) == []
    else:
        async with asyncio.timeout(30):
            copy = await layer.receive(listener)
        assert copy["seq"] == 1 and terminal_local.from_here(copy)
    await ws.disconnect()
    assert terminal_local.counts() == {"streams": 0, "watchers": 0}
