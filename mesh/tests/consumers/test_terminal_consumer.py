"""`/ws/nodes/{node_id}/terminal/` on the real router: refusals, open, replay on attach."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from mesh.models import NodeStatus, TerminalSession
from mesh.services import terminals
from mesh.tests.consumers.conftest import communicator, login_cookie, refused_with

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/ws/nodes/term-a/terminal/"


@pytest.fixture
def node(user, make_node, grant):  # type: ignore[no-untyped-def]
    found, _ = make_node("term-a")
    found.status = NodeStatus.ONLINE
    found.save(update_fields=["status"])
    grant(user, found)
    return found


async def test_anonymous_and_strangers_are_refused(node, user, make_user):  # type: ignore[no-untyped-def]
    assert await refused_with(communicator(PATH)) == 4401
    stranger = await database_sync_to_async(make_user)("stranger@example.com")
    cookie = await login_cookie(stranger)
    assert await refused_with(communicator(PATH, cookie)) == 4403
    assert await refused_with(communicator("/ws/nodes/nope/terminal/", cookie)) == 4403
    owner = await login_cookie(user)  # a signed-in owner from another site: refused too
    assert await refused_with(communicator(PATH, owner, origin=b"http://evil.example")) == 4403
    assert await refused_with(communicator(PATH, owner, origin=None)) == 4403


async def test_open_input_and_errors(node, user):  # type: ignore[no-untyped-def]
    ws = communicator(PATH, await login_cookie(user))
    assert (await ws.connect(timeout=5))[0] is True
    await ws.send_json_to({"type": "terminal.input", "data": "ls\n"})
    assert (await ws.receive_json_from(timeout=5))["error"]["code"] == "no_terminal"
    await ws.send_json_to({"type": "terminal.open", "cols": 0, "rows": 24})
    frame = await ws.receive_json_from(timeout=5)
    assert frame["error"]["fields"] == {"cols": ["Must be an integer from 1 to 1000."]}
    await ws.send_json_to({"type": "terminal.open", "cols": 90, "rows": 20})
    opened = await ws.receive_json_from(timeout=5)
    assert opened["type"] == "terminal.opened" and opened["seq"] == 0
    row = await database_sync_to_async(TerminalSession.objects.get)()
    assert (str(row.pk), row.cols, row.rows) == (opened["session"], 90, 20)
    await ws.send_json_to({"type": "terminal.open", "cols": 90, "rows": 20})
    assert (await ws.receive_json_from(timeout=5))["error"]["code"] == "terminal_already_open"
    await ws.send_json_to({"type": "terminal.input", "data": 5})
    assert (await ws.receive_json_from(timeout=5))["error"]["code"] == "invalid_input"
    await ws.disconnect()


async def test_strict_node_refuses(node, user):  # type: ignore[no-untyped-def]
    node.sandbox_policy = {**node.sandbox_policy, "mode": "strict"}
    await database_sync_to_async(node.save)()
    ws = communicator(PATH, await login_cookie(user))
    assert (await ws.connect(timeout=5))[0] is True
    await ws.send_json_to({"type": "terminal.open", "cols": 80, "rows": 24})
    assert (await ws.receive_json_from(timeout=5))["error"]["code"] == "terminals_not_allowed"
    assert not await database_sync_to_async(TerminalSession.objects.exists)()
    await ws.disconnect()


async def test_attach_replays_after_seq_then_the_exit(node, user):  # type: ignore[no-untyped-def]
    def seed() -> str:
        session = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
        sid = str(session.pk)
        chunks = [
            terminals.TerminalChunkIn(sid, n, n / 10, f"line {n}\r\n".encode()) for n in (1, 2, 3)
        ]
        terminals.terminal_output_store(node_id="term-a", chunks=chunks)
        terminals.terminal_exited(node_id="term-a", session_id=sid, exit_code=4, last_seq=3)
        return sid

    sid = await database_sync_to_async(seed)()
    ws = communicator(PATH, await login_cookie(user))
    assert (await ws.connect(timeout=5))[0] is True
    await ws.send_json_to({"type": "terminal.attach", "session": sid, "after_seq": 1})
    opened = await ws.receive_json_from(timeout=5)
    assert (opened["type"], opened["session"], opened["seq"]) == ("terminal.opened", sid, 1)
    output = await ws.receive_json_from(timeout=5)
    assert (output["type"], output["seq"], output["data"]) == (
        "terminal.output",
        3,
        "line 2\r\nline 3\r\n",
    )
    ended = await ws.receive_json_from(timeout=5)
    assert (ended["type"], ended["code"]) == ("terminal.exit", 4)
    await ws.disconnect()
