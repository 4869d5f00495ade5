"""Terminal input over a real gRPC stream: what is typed while no stream holds the node is sent
when one joins, in order, after what the node says it applied; later bells never overtake it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from cortex.testing import wait_until_async
from mesh.models import Node, TerminalSession
from mesh.services import terminals
from mesh.tests.meshkit import TestNode, join

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def _row(model: Any, **where: Any) -> Any:
    return model.objects.get(**where)


async def _keys(client: TestNode, count: int, timeout: float = 20.0) -> list[tuple[Any, ...]]:
    """The next `count` TerminalInput/TerminalResize messages, in arrival order."""
    got: list[tuple[Any, ...]] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            message = await client.inbox.get()
            assert message is not None, "stream ended"
            kind = message.WhichOneof("body")
            if kind == "terminal_input":
                keys = message.terminal_input
                got.append(("input", keys.seq, keys.data.decode(), keys.key))
            elif kind == "terminal_resize":
                size = message.terminal_resize
                got.append(("resize", size.seq, size.cols, size.rows, size.key))
    return got


async def _keys_before(client: TestNode, kind: str, timeout: float = 20.0) -> list[Any]:
    """Keys that arrive before the next message of `kind` (the stream keeps the hub's order)."""
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await client.inbox.get()
            assert message is not None, "stream ended"
            body = message.WhichOneof("body")
            if body == kind:
                return got
            if body in ("terminal_input", "terminal_resize"):
                got.append(message)


async def test_keys_typed_while_no_stream_holds_the_node_arrive_once_in_order(
    mesh_address, make_node, grant, user
):
    node, token = await sync_to_async(make_node)("keys-n")
    await sync_to_async(grant)(user, node)
    credential = await join(mesh_address, "keys-n", token)
    first = TestNode(mesh_address, "keys-n", credential)
    await first.connect()
    session = str(
        (
            await sync_to_async(terminals.terminal_open)(
                actor=user, node_id="keys-n", cols=80, rows=24
            )
        ).pk
    )
    assert (await first.recv("terminal_open")).terminal_open.session_id == session
    await first.send(terminal_opened={"session_id": session, "pid": 1})
    await wait_until_async(
        lambda: _status(session), message="the session did not start", timeout=20
    )
    await first.hang_up()
    await wait_until_async(lambda: _connection("keys-n"), timeout=20)

    # Nobody holds the node's stream: the bells reach no one; the keys are stored.
    await terminals.terminal_input(node_id="keys-n", session_id=session, data="a")
    await terminals.terminal_resize(node_id="keys-n", session_id=session, cols=100, rows=30)
    await terminals.terminal_input(node_id="keys-n", session_id=session, data="b")

    second = TestNode(mesh_address, "keys-n", credential)
    await second.connect(terminal_ids=[session], terminal_input_keys=True)
    away = await _keys(second, 3)
    assert [k[:-1] for k in away] == [("input", 1, "a"), ("resize", 2, 100, 30), ("input", 3, "b")]
    # Live: sent from the bell (seq 0: before it is stored), once.
    await terminals.terminal_input(node_id="keys-n", session_id=session, data="c")
    # Stored only (the AI's shell types so): sent from storage when its bell rings.
    await sync_to_async(terminals.terminal_type)(node_id="keys-n", session_id=session, data="d")
    await terminals.terminal_input(node_id="keys-n", session_id=session, data="e")
    live = await _keys(second, 3)
    assert [k[:-1] for k in live] == [("input", 0, "c"), ("input", 5, "d"), ("input", 0, "e")]
    # A socket's second input rung live before its first reached this stream waits for
    # storage, and follows the first.
    first_bell, second_bell = (
        terminals.terminal_input_bell(
            node_id="keys-n", session_id=session, data=text, writer="w0", n=n
        )
        for n, text in ((1, "g"), (2, "h"))
    )
    await terminals.terminal_keys_ring(second_bell)
    await terminals.terminal_keys_commit([first_bell, second_bell])
    held = await _keys(second, 2)
    assert held == [("input", 7, "g", "w0.1"), ("input", 8, "h", "w0.2")]
    live += held
    row = await _row(TerminalSession, pk=session)
    await sync_to_async(terminals.terminal_close)(actor=user, session=row)
    assert await _keys_before(second, "terminal_close") == []  # nothing sent twice
    await second.hang_up()
    await wait_until_async(lambda: _connection("keys-n"), timeout=20)
    await wait_until_async(lambda: _sent(session, 8), timeout=20)

    # The node reconnects: it may have missed the last ones sent, so they come again (it
    # applies each key once), in order, with the keys they had.
    third = TestNode(mesh_address, "keys-n", credential)
    await third.connect(terminal_ids=[session], terminal_input_keys=True)
    again = await _keys(third, 8)
    assert [(k[0], k[1], k[-1]) for k in again] == [
        (kind, seq, key) for seq, (kind, *_, key) in enumerate(away + live, start=1)
    ]
    assert await _keys_before(third, "terminal_close") == []
    row = await _row(TerminalSession, pk=session)
    assert (row.input_seq, row.status) == (8, "running")
    await third.hang_up()
    await wait_until_async(lambda: _connection("keys-n"), timeout=20)

    # An agent that does not apply keys once gets only what was not marked sent: nothing.
    fourth = TestNode(mesh_address, "keys-n", credential)
    await fourth.connect(terminal_ids=[session])
    assert await _keys_before(fourth, "terminal_close") == []
    await fourth.hang_up()


@sync_to_async
def _sent(session: str, seq: int) -> bool:
    return TerminalSession.objects.get(pk=session).input_sent_seq == seq


@sync_to_async
def _status(session: str) -> bool:
    return TerminalSession.objects.get(pk=session).status == "running"


@sync_to_async
def _connection(node_id: str) -> bool:
    return Node.objects.get(node_id=node_id).connection_id == ""


async def test_sessions_the_sweep_ends_are_hung_up_on_a_stream_still_held(
    mesh_address, make_node, grant, user, settings
):
    """A node whose stream stalls (offline by missed heartbeats, the stream still held) has its
    sessions ended `lost`: the holder tells it to hang them up, not only a later Hello."""
    from datetime import timedelta

    from django.utils import timezone

    settings.MESH_TERMINAL_LOST_AFTER = 60
    node, token = await sync_to_async(make_node)("keys-s")
    await sync_to_async(grant)(user, node)
    client = TestNode(mesh_address, "keys-s", await join(mesh_address, "keys-s", token))
    await client.connect()
    opened = await sync_to_async(terminals.terminal_open)(
        actor=user, node_id="keys-s", cols=80, rows=24
    )
    session = str(opened.pk)
    await client.recv("terminal_open")
    await client.send(terminal_opened={"session_id": session, "pid": 1})
    await wait_until_async(lambda: _status(session), timeout=20)
    await sync_to_async(Node.objects.filter(node_id="keys-s").update)(
        status="offline", disconnected_at=timezone.now() - timedelta(seconds=61)
    )
    assert await sync_to_async(terminals.terminals_reap_lost)() == 1
    close = (await client.recv("terminal_close")).terminal_close
    assert (close.session_id, close.reason) == (session, "ended by the hub")
    await client.hang_up()
