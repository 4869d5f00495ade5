"""Terminals end to end: a real hub process, a real agent, a real PTY, over the WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import urllib.error
import urllib.request
from typing import Any

import pytest
import websockets

from cortex.testing import wait_until

pytestmark = pytest.mark.slow


def _http(hub: Any, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310  # loopback test hub
        hub.http_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(raw) if "json" in kind else raw.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Term:
    """One terminal socket with the output it has seen."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.text = ""
        self.seq = 0
        self.frames: list[dict[str, Any]] = []

    async def send(self, kind: str, **payload: Any) -> None:
        await self.ws.send(json.dumps({"type": kind, **payload}))

    async def frame(self, timeout: float = 60.0) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.frames.append(frame)
        if frame["type"] == "terminal.output":
            assert frame["seq"] > self.seq
            self.seq = frame["seq"]
            self.text += frame["data"]
        return frame

    async def until_text(self, needle: str, timeout: float = 60.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while needle not in self.text:
                    await self.frame()
        except TimeoutError:
            raise AssertionError(f"{needle!r} not seen in {self.frames[-20:]}") from None

    async def until_type(self, kind: str, timeout: float = 60.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frame()
                if frame["type"] == kind:
                    return frame


async def _connect(hub: Any, token: str, node_id: str = "live") -> Any:
    status, ticket = await asyncio.to_thread(_http, hub, "POST", "/api/v1/ws-ticket/", token, {})
    assert status in (200, 201), ticket
    url = f"{hub.http_url.replace('http://', 'ws://')}/ws/nodes/{node_id}/terminal/"
    return await websockets.connect(f"{url}?ticket={ticket['ticket']}", origin=hub.http_url)


def _setup(hub: Any, tmp_path: Any) -> tuple[Any, str]:
    seeded = hub.seed(token=True)
    invite, token = seeded["invite"], seeded["token"]
    agent = hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    wait_until(
        lambda: _http(hub, "GET", "/api/v1/nodes/live/", token)[1]["status"] != "offline",
        timeout=60,
    )
    return agent, token


AUDIT = """
from accounts.models import AuditEvent
print(sorted(set(AuditEvent.objects.filter(action__startswith="terminal.")
      .values_list("action", flat=True))))
"""


def test_a_real_shell_through_the_hub(live_hub, tmp_path):
    agent, token = _setup(live_hub, tmp_path)

    async def scenario() -> tuple[str, int]:
        ws = await _connect(live_hub, token)
        term = Term(ws)
        await term.send("terminal.open", cols=100, rows=30)
        opened = await term.until_type("terminal.opened")
        session = opened["session"]
        # cd persists: it is one shell.
        await term.send("terminal.input", data="cd /tmp\n")
        await term.send("terminal.input", data="echo at-$(pwd)-\n")
        await term.until_text("at-/tmp-")
        # stty size follows the size given, then a resize.
        await term.send("terminal.input", data="echo size-$(stty size)-\n")
        await term.until_text("size-30 100-")
        await term.send("terminal.resize", cols=132, rows=43)
        await term.send("terminal.input", data="echo size-$(stty size)-\n")
        await term.until_text("size-43 132-")
        # Ctrl-C reaches the foreground process group.
        await term.send(
            "terminal.input", data="echo go-$((1+1)); sleep 100; echo slept-$((40+2))\n"
        )
        await term.until_text("go-2")
        await asyncio.sleep(0.3)  # not an assertion: ^C typed ahead of the line would erase it
        await term.send("terminal.input", data="\x03")
        await term.send("terminal.input", data="echo rc-$?-\n")
        await term.until_text("rc-130-")
        assert "slept-42" not in term.text
        # UTF-8 passes through whole.
        await term.send("terminal.input", data="printf 'caf\\xc3\\xa9-%s\\n' ok\n")
        await term.until_text("café-ok")
        # Disconnect; output produced meanwhile is replayed on attach.
        seen = term.seq
        await term.send("terminal.input", data="sleep 1; echo while-away-$((5*5))\n")
        await ws.close()
        await asyncio.sleep(0)  # the socket is gone before the output arrives
        ws = await _connect(live_hub, token)
        again = Term(ws)
        again.seq = seen
        await again.send("terminal.attach", session=session, after_seq=seen)
        assert (await again.until_type("terminal.opened"))["session"] == session
        await again.until_text("while-away-25")
        assert "rc-130-" not in again.text  # only what came after `seen`
        # Close: the shell is hung up and the exit comes back.
        await again.send("terminal.close")
        ended = await again.until_type("terminal.exit")
        await ws.close()
        return session, ended["code"]

    session, code = asyncio.run(scenario())
    assert code == 129  # SIGHUP
    try:
        status, listed = _http(live_hub, "GET", "/api/v1/nodes/live/terminals/", token)
        assert status == 200
        (row,) = listed["results"]
        assert (row["id"], row["status"], row["exit_code"]) == (session, "exited", 129)
        status, cast = _http(live_hub, "GET", f"/api/v1/nodes/live/terminals/{session}/cast", token)
        assert status == 200
        lines = cast.splitlines()
        header = json.loads(lines[0])
        assert (header["version"], header["width"], header["height"]) == (2, 100, 30)
        events = [json.loads(line) for line in lines[1:]]
        assert all(e[1] == "o" for e in events)
        assert [e[0] for e in events] == sorted(e[0] for e in events)
        recorded = "".join(e[2] for e in events)
        assert "at-/tmp-" in recorded and "while-away-25" in recorded and "café-ok" in recorded
        audit = live_hub.manage("shell", "-v", "0", "-c", AUDIT)
        assert audit.strip() == "['terminal.attach', 'terminal.close', 'terminal.open']"
    finally:
        live_hub.stop_process(agent)


STRICT = """
from mesh.models import Node
from mesh import services
from accounts.models import User
node = Node.objects.get(node_id="live")
admin = User.objects.get(email="root@example.com")
policy = dict(node.sandbox_policy, mode="strict", allowed_commands=["ls"])
if ALLOW is not None:
    policy["allow_terminals"] = ALLOW
services.node_update(actor=admin, node=node, data={"sandbox_policy": policy})
"""
BOB = 'from accounts.models import User; User.objects.create_user(email="bob@example.com")'


def test_strict_nodes_refuse_unless_allowed_and_strangers_get_4403(live_hub, tmp_path):
    agent, token = _setup(live_hub, tmp_path)
    live_hub.manage("shell", "-v", "0", "-c", STRICT.replace("ALLOW", "None"))
    live_hub.manage("shell", "-v", "0", "-c", BOB)
    stranger = live_hub.manage("create_api_token", "bob@example.com").strip()

    async def scenario() -> None:
        ws = await _connect(live_hub, token)
        term = Term(ws)
        await term.send("terminal.open", cols=80, rows=24)
        error = await term.until_type("error")
        assert error["error"]["code"] == "terminals_not_allowed"
        await term.send("terminal.input", data="id\n")
        assert (await term.until_type("error"))["error"]["code"] == "no_terminal"
        await ws.close()
        # No grant on the node: refused before anything, as if it did not exist.
        for node_id in ("live", "nope"):
            ws = await _connect(live_hub, stranger, node_id)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
            assert closed.value.rcvd.code == 4403

    asyncio.run(scenario())
    try:
        status, body = _http(live_hub, "GET", "/api/v1/nodes/live/terminals/", stranger)
        assert (status, body["error"]["code"]) == (404, "not_found")
        status, body = _http(live_hub, "GET", "/api/v1/nodes/live/terminals/", token)
        assert (status, body["count"]) == (200, 0)
        # Explicitly allowed: a strict node opens a terminal.
        live_hub.manage(
            "shell",
            "-v",
            "0",
            "-c",
            STRICT.replace("ALLOW", "True").replace("User.objects.create_user", "print"),
        )

        async def allowed() -> None:
            ws = await _connect(live_hub, token)
            term = Term(ws)
            await term.send("terminal.open", cols=80, rows=24)
            await term.until_type("terminal.opened")
            await term.send("terminal.input", data="echo strict-$((2+3))-ok\n")
            await term.until_text("strict-5-ok")
            await ws.close()

        asyncio.run(allowed())
    finally:
        live_hub.stop_process(agent)


def test_a_hub_restart_keeps_the_shell_and_keys_typed_before_the_node_is_back_arrive(
    live_hub, tmp_path
):
    """Keystrokes and a resize sent while no stream to the node exists (the hub restarted, the
    node not yet back) are stored and reach the shell, in order, once the node rejoins."""
    agent, token = _setup(live_hub, tmp_path)

    async def before() -> tuple[str, int]:
        ws = await _connect(live_hub, token)
        term = Term(ws)
        await term.send("terminal.open", cols=80, rows=24)
        session = (await term.until_type("terminal.opened"))["session"]
        await term.send("terminal.input", data="cd /tmp; export KEPT=yes-$((3*3))\n")
        await term.send("terminal.input", data="echo ready-$((1+1))\n")
        await term.until_text("ready-2")
        await ws.close()
        return session, term.seq

    async def after(session: str, seen: int) -> str:
        ws = await _connect(live_hub, token)
        term = Term(ws)
        term.seq = seen
        await term.send("terminal.attach", session=session, after_seq=seen)
        await term.until_type("terminal.opened")
        # The node is held stopped: nothing holds its stream while these are sent.
        await term.send("terminal.input", data="echo back-$(pwd)-$KEPT\n")
        await term.send("terminal.resize", cols=101, rows=33)
        await term.send("terminal.input", data="echo size-$(stty size)-\n")
        await asyncio.to_thread(os.kill, agent.pid, signal.SIGCONT)
        await term.until_text("size-33 101-")
        await ws.close()
        return term.text

    try:
        session, seen = asyncio.run(before())
        os.kill(agent.pid, signal.SIGSTOP)
        live_hub.stop()
        live_hub.start()
        text = asyncio.run(after(session, seen))
        assert "ready-2" not in text  # replay starts after what the client had
        assert text.index("back-/tmp-yes-9") < text.index("size-33 101-")
        status, listed = _http(live_hub, "GET", "/api/v1/nodes/live/terminals/", token)
        assert [(r["id"], r["status"]) for r in listed["results"]] == [(session, "running")]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(agent.pid, signal.SIGCONT)
        live_hub.stop_process(agent)


CHUNKS = """
from mesh.models import TerminalChunk
print(list(TerminalChunk.objects.filter(session_id="SESSION").values_list("seq", flat=True)))
"""
#: A line the loop printed: the first follows the shell's own control sequence and a `\r`.
NUMBERS = re.compile(r"(?:^|\r)(\d+)\r?$", re.M)


def test_a_killed_hub_replays_by_seq_and_a_restarted_node_ends_its_sessions(live_hub, tmp_path):
    """The hub process is killed while a shell prints 1..1000: the node keeps its PTY, sends
    what the hub had not stored once it is back, and an attach with `after_seq` replays what
    was missed then goes on live, with no gap and no duplicate; keys typed right after the
    restart arrive. A node that restarts (its shells gone) ends the session with a reason."""
    agent, token = _setup(live_hub, tmp_path)
    loop = "for i in $(seq 1 1000); do echo $i; sleep 0.05; done; echo loop-$((6*7))-done\n"

    async def before() -> tuple[str, str, int]:
        ws = await _connect(live_hub, token)
        term = Term(ws)
        await term.send("terminal.open", cols=80, rows=24)
        session = (await term.until_type("terminal.opened"))["session"]
        await term.send("terminal.input", data=loop)
        async with asyncio.timeout(60):
            while len(NUMBERS.findall(term.text)) < 30:  # well into the loop
                await term.frame()
        return session, term.text, term.seq

    agents = [agent]

    def restart_agent() -> None:
        agents[-1].kill()
        agents[-1].wait(timeout=30)
        agents.append(live_hub.start_agent(node_id="live", invite="", root=tmp_path))

    async def after(session: str, seen: int) -> tuple[Term, dict[str, Any]]:
        ws = await _connect(live_hub, token)
        term = Term(ws)
        term.seq = seen
        await term.send("terminal.attach", session=session, after_seq=seen)
        await term.until_type("terminal.opened")
        await term.send("terminal.input", data="echo typed-$((2+3))-\n")
        await term.until_text("loop-42-done", timeout=180)
        await term.until_text("typed-5-")
        # The agent dies with its shells; the one that starts in its place does not hold the
        # session: it ends, and the socket is told why.
        await asyncio.to_thread(restart_agent)
        ended = await term.until_type("terminal.exit", timeout=120)
        await ws.close()
        return term, ended

    try:
        session, first, seen = asyncio.run(before())
        live_hub.process.kill()  # no goodbye, no flush: as a crash
        live_hub.process.wait(timeout=30)
        live_hub.start()
        term, ended = asyncio.run(after(session, seen))
        numbers = [int(n) for n in NUMBERS.findall(first + term.text)]
        assert numbers == list(range(1, 1001))
        stored = json.loads(
            live_hub.manage("shell", "-v", "0", "-c", CHUNKS.replace("SESSION", session))
        )
        assert stored == list(range(1, len(stored) + 1))  # every seq once, none missing
        assert stored[-1] >= term.seq
        assert (ended["code"], ended["error"]) == (-1, "node_restarted")
        status, listed = _http(live_hub, "GET", "/api/v1/nodes/live/terminals/", token)
        assert [(r["id"], r["status"]) for r in listed["results"]] == [(session, "lost")]
    finally:
        for process in agents:
            live_hub.stop_process(process)


def test_a_policy_that_stops_allowing_terminals_hangs_them_up(live_hub, tmp_path):
    agent, token = _setup(live_hub, tmp_path)
    admin = live_hub.manage("create_api_token", "root@example.com").strip()
    _, node = _http(live_hub, "GET", "/api/v1/nodes/live/", admin)
    policy = {**node["sandbox_policy"], "allow_terminals": False}

    async def scenario() -> dict[str, Any]:
        ws = await _connect(live_hub, token)
        term = Term(ws)
        await term.send("terminal.open", cols=80, rows=24)
        await term.until_type("terminal.opened")
        await term.send("terminal.input", data="echo up-$((2+2))\n")
        await term.until_text("up-4")
        # Through the hub (its doorbell reaches the node's stream): the node is told at once.
        status, _ = await asyncio.to_thread(
            _http, live_hub, "PATCH", "/api/v1/nodes/live/", admin, {"sandbox_policy": policy}
        )
        assert status == 200
        ended = await term.until_type("terminal.exit")
        await ws.close()
        return ended

    try:
        assert asyncio.run(scenario())["code"] == 129  # SIGHUP from the node's own check
    finally:
        live_hub.stop_process(agent)
