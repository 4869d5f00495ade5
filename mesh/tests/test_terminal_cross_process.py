"""Terminal input across processes (PostgreSQL, Redis, a web process and two `runmesh`): keys
typed while the runmesh holding the node's stream is dead reach the node, in order, through
the other runmesh once the node reconnects there."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from mesh.tests.meshkit import TestNode, join, wait_serving
from mesh.tests.test_cross_process import Stack, http_call, stack, wait_http  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


async def _keys(node: TestNode, count: int, timeout: float = 60.0) -> list[tuple[Any, ...]]:
    """The next `count` TerminalInput/TerminalResize messages: (kind, data or size, key)."""
    got: list[tuple[Any, ...]] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            message = await node.inbox.get()
            assert message is not None, "stream ended"
            body = message.WhichOneof("body")
            if body == "terminal_input":
                keys = message.terminal_input
                got.append(("input", keys.data.decode(), keys.key))
            elif body == "terminal_resize":
                size = message.terminal_resize
                got.append(("resize", (size.cols, size.rows), size.key))
    return got


async def _frame(ws: Any, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


async def test_keys_typed_while_the_holding_runmesh_is_dead_arrive_through_the_other(  # noqa: F811
    stack,  # noqa: F811  # the fixture imported above
):
    running: Stack = stack["stack"]
    try:
        await wait_serving(stack["grpc_a"], timeout=60)
        await wait_serving(stack["grpc_b"], timeout=60)
        await asyncio.to_thread(wait_http, stack["http"])
    except AssertionError:
        pytest.fail(running.logs())
    node_id, base = stack["node_id"], stack["http"]
    credential = await join(stack["grpc_a"], node_id, stack["invite"])
    on_a = TestNode(stack["grpc_a"], node_id, credential)
    on_b = TestNode(stack["grpc_b"], node_id, credential)
    try:
        await on_a.connect()
        status, ticket = await asyncio.to_thread(
            http_call, base, "POST", "/api/v1/ws-ticket/", stack["alice"], {}
        )
        assert status in (200, 201), ticket
        url = f"{base.replace('http://', 'ws://')}/ws/nodes/{node_id}/terminal/"
        ws = await websockets.connect(f"{url}?ticket={ticket['ticket']}", origin=base)
        await ws.send(json.dumps({"type": "terminal.open", "cols": 80, "rows": 24}))
        session = (await _frame(ws, "terminal.opened"))["session"]
        assert (await on_a.recv("terminal_open", 60)).terminal_open.session_id == session
        await on_a.send(terminal_opened={"session_id": session, "pid": 1})
        await ws.send(json.dumps({"type": "terminal.input", "data": "a"}))
        (first,) = await _keys(on_a, 1)
        assert first[:2] == ("input", "a")

        # The runmesh holding the stream dies; the node is away from both for a while.
        dict(running.processes)["runmesh-a"].kill()
        await ws.send(json.dumps({"type": "terminal.input", "data": "b"}))
        await ws.send(json.dumps({"type": "terminal.resize", "cols": 90, "rows": 30}))

        # Back through runmesh B: what it may have missed comes again (with the key it had:
        # the node applies each once), then what was typed while it was away, in order.
        await on_b.connect(terminal_ids=[session], terminal_input_keys=True)
        again = await _keys(on_b, 3)
        assert [k[:2] for k in again] == [("input", "a"), ("input", "b"), ("resize", (90, 30))]
        assert again[0][2] == first[2]
        await ws.send(json.dumps({"type": "terminal.input", "data": "c"}))
        assert [k[:2] for k in await _keys(on_b, 1)] == [("input", "c")]
        await ws.close()
    except BaseException:
        print(running.logs())  # noqa: T201  # the processes' logs explain a failure
        raise
    finally:
        await on_a.hang_up()
        await on_b.hang_up()
