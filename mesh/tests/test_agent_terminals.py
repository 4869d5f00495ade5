"""The agent's terminals in-process: a real PTY running real bash, no hub."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cortex.testing import child_processes, process_gone, wait_until_async
from mesh.agent.config import parse_config
from mesh.agent.pb import mesh_pb2
from mesh.agent.sandbox import Policy
from mesh.agent.skills.shell import build_env
from mesh.agent.tasks import policy_from_pb
from mesh.agent.terminals import TerminalLimits, TerminalManager, exit_status, utf8_split

BASH = shutil.which("bash") or "/bin/bash"


class Node:
    """A TerminalManager and everything it sent, with helpers to wait on it."""

    def __init__(self, tmp_path: Path, limits: TerminalLimits) -> None:
        self.sent: list[mesh_pb2.NodeMessage] = []
        self.manager = TerminalManager(limits, self.sent.append)
        self.root = tmp_path
        self.env = build_env(allow=("LANG",), fixed={}, declared=None, home=tmp_path)

    async def open(
        self, *, cols: int = 80, rows: int = 24, refusal: tuple[str, str] | None = None
    ) -> str:
        session = str(uuid.uuid4())
        message = mesh_pb2.TerminalOpen(session_id=session, cols=cols, rows=rows)
        await self.manager.open(message, refusal=refusal, program=BASH, cwd=self.root, env=self.env)
        return session

    def output(self, session: str) -> str:
        data = b"".join(
            m.terminal_output.data
            for m in self.sent
            if m.WhichOneof("body") == "terminal_output" and m.terminal_output.session_id == session
        )
        return data.decode("utf-8", "replace")

    def exits(self, session: str) -> list[mesh_pb2.TerminalExit]:
        return [
            m.terminal_exit
            for m in self.sent
            if m.WhichOneof("body") == "terminal_exit" and m.terminal_exit.session_id == session
        ]

    def type(self, session: str, text: str) -> None:
        self.manager.input(session, text.encode())

    def ack_all(self, session: str) -> None:
        terminal = self.manager.sessions.get(session)
        if terminal is not None:
            self.manager.ack(session, terminal.seq)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    box = Node(tmp_path, TerminalLimits(window_bytes=64 * 1024, idle_timeout=3600))
    yield box
    await box.manager.stop_all(timeout=10)


async def test_cd_persists_and_output_is_numbered(node: Node) -> None:
    session = await node.open()
    assert node.sent[0].WhichOneof("body") == "terminal_opened"
    node.type(session, "cd /tmp; pwd; echo marker-$((6*7))\n")
    await wait_until_async(lambda: "marker-42" in node.output(session))
    node.type(session, "pwd > here.txt; echo second-$((1+1))\n")
    await wait_until_async(lambda: "second-2" in node.output(session))
    assert re.search(r"[\r\n]/tmp\r\n", node.output(session))  # pwd's own line
    assert (Path("/tmp") / "here.txt").read_text() == "/tmp\n"
    os.unlink("/tmp/here.txt")
    seqs = [m.terminal_output.seq for m in node.sent if m.WhichOneof("body") == "terminal_output"]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_the_shell_starts_in_the_workspace_with_a_terminal(node: Node) -> None:
    session = await node.open()
    node.type(session, "echo at-$(pwd)-; tty; echo TERM=$TERM-\n")
    await wait_until_async(lambda: "TERM=xterm-256color-" in node.output(session))
    assert f"at-{node.root}-" in node.output(session)
    assert "/dev/pts/" in node.output(session)


async def test_stty_size_follows_a_resize(node: Node) -> None:
    session = await node.open(cols=100, rows=40)
    node.type(session, "echo size-$(stty size)-\n")
    await wait_until_async(lambda: "size-40 100-" in node.output(session))
    node.manager.resize(session, rows=33, cols=120)
    node.type(session, "echo size-$(stty size)-\n")
    await wait_until_async(lambda: "size-33 120-" in node.output(session))


async def test_ctrl_c_stops_the_foreground_process(node: Node) -> None:
    session = await node.open()
    node.type(session, "sleep 100\n")
    shell = node.manager.sessions[session].proc.pid  # type: ignore[union-attr]
    await wait_until_async(lambda: "sleep" in child_processes(shell).values())
    node.type(session, "\x03")
    await wait_until_async(lambda: "sleep" not in child_processes(shell).values())
    node.type(session, "echo after-$?-\n")
    await wait_until_async(lambda: "after-130-" in node.output(session))


async def test_exit_reports_the_code_after_the_last_output(node: Node) -> None:
    session = await node.open()
    node.type(session, "echo bye; exit 7\n")
    await wait_until_async(lambda: node.exits(session))
    (exit_,) = node.exits(session)
    assert exit_.exit_code == 7
    assert exit_.error_code == ""
    assert exit_.last_seq == node.manager.sessions[session].seq
    assert "bye" in node.output(session)
    assert node.sent[-1].WhichOneof("body") == "terminal_exit"
    # The exit is kept until the hub confirms it, then forgotten.
    assert node.manager.held() == [session]
    assert node.manager.resend()[-1].terminal_exit.exit_code == 7
    node.manager.ack(session, exit_.last_seq, final=True)
    assert node.manager.held() == []


async def test_memory_stays_flat_under_yes_until_the_hub_acks(node: Node) -> None:
    session = await node.open()
    window = node.manager.limits.window_bytes
    read = node.manager.limits.read_size
    node.type(session, "yes\n")
    terminal = node.manager.sessions[session]
    await wait_until_async(lambda: not terminal.reading)
    assert window <= terminal.unacked_bytes < window + read
    produced = terminal.seq
    await asyncio.sleep(0.5)  # nothing acks: nothing more is read
    assert terminal.seq == produced
    assert terminal.unacked_bytes < window + read
    for _ in range(5):  # each ack lets one more window through, never more
        node.ack_all(session)
        assert terminal.unacked_bytes == 0
        await wait_until_async(lambda: not terminal.reading)
        assert terminal.unacked_bytes < window + read
    assert terminal.seq > produced
    node.type(session, "\x03")
    node.ack_all(session)


async def test_unacked_output_is_sent_again_after_a_reconnect(node: Node) -> None:
    session = await node.open()
    node.type(session, "echo one-$((0+1))\n")
    await wait_until_async(lambda: "one-1" in node.output(session))
    terminal = node.manager.sessions[session]
    first = terminal.seq
    node.manager.ack(session, first - 1)
    again = node.manager.resend()
    assert again[0].WhichOneof("body") == "terminal_opened"
    assert [m.terminal_output.seq for m in again[1:]] == [first]


async def test_keyed_input_is_applied_once(node: Node) -> None:
    """The hub resends stored input after a reconnect (and two of its processes may race):
    an input or resize whose key was applied already is ignored."""
    session = await node.open()
    node.manager.input(session, b"echo one-$((0+1))\n", "k1")
    node.manager.input(session, b"echo one-$((0+1))\n", "k1")  # the same key again
    node.manager.resize(session, 40, 120, "k2")
    node.manager.resize(session, 10, 20, "k2")  # a resend of k2 with other numbers: ignored
    node.manager.input(session, b"echo size-$(stty size)-done\n", "k3")
    # The echo of the typed line holds "-done" too: wait for the command's own output.
    await wait_until_async(lambda: re.search(r"size-\d+ \d+-done", node.output(session)))
    text = node.output(session)
    assert text.count("one-1") == 1 and "size-40 120-done" in text
    node.manager.input(session, b"echo plain-$((3+3))\n")  # no key: always applied
    node.manager.input(session, b"echo plain-$((3+3))\n")
    await wait_until_async(lambda: node.output(session).count("plain-6") == 2)


async def test_close_hangs_up_the_shell(node: Node) -> None:
    session = await node.open()
    node.type(session, "sleep 100 &\n")
    shell = node.manager.sessions[session].proc.pid  # type: ignore[union-attr]
    sleepers = await wait_until_async(
        lambda: [pid for pid, name in child_processes(shell).items() if name == "sleep"]
    )
    node.manager.close(session)
    await wait_until_async(lambda: node.exits(session))
    assert node.exits(session)[0].exit_code == 128 + 1  # SIGHUP
    await wait_until_async(lambda: process_gone(sleepers[0]))


async def test_close_all_hangs_up_every_live_session(node: Node) -> None:
    sessions = [await node.open(), await node.open()]
    assert node.manager.close_all() == 2
    await wait_until_async(lambda: all(node.exits(s) for s in sessions))
    assert node.manager.close_all() == 0


async def test_a_refused_open_runs_nothing(node: Node) -> None:
    session = await node.open(refusal=("terminals_not_allowed", "no"))
    assert session not in node.manager.sessions
    (exit_,) = node.exits(session)
    assert (exit_.exit_code, exit_.error_code) == (-1, "terminals_not_allowed")


async def test_more_sessions_than_the_limit_are_refused(tmp_path: Path) -> None:
    box = Node(tmp_path, TerminalLimits(max_sessions=2))
    try:
        first, second, third = await box.open(), await box.open(), await box.open()
        assert box.exits(third)[0].error_code == "too_many_terminals"
        box.type(first, "echo a-$((1))\n")
        box.type(second, "echo b-$((2))\n")
        await wait_until_async(lambda: "a-1" in box.output(first) and "b-2" in box.output(second))
        assert "b-2" not in box.output(first)
    finally:
        await box.manager.stop_all(timeout=10)


async def test_an_idle_session_is_closed(tmp_path: Path) -> None:
    box = Node(tmp_path, TerminalLimits(idle_timeout=1.0))
    try:
        session = await box.open()
        await wait_until_async(lambda: box.exits(session))
        assert box.exits(session)[0].exit_code == 128 + 1
    finally:
        await box.manager.stop_all(timeout=10)


async def test_stop_all_ends_every_shell(tmp_path: Path) -> None:
    box = Node(tmp_path, TerminalLimits())
    sessions = [await box.open(), await box.open()]
    pids = [box.manager.sessions[s].proc.pid for s in sessions]  # type: ignore[union-attr]
    await box.manager.stop_all(timeout=10)
    for pid in pids:
        assert process_gone(pid)
    assert all(t.master == -1 for t in box.manager.sessions.values())


def test_utf8_split_keeps_characters_whole() -> None:
    euro = "€".encode()
    assert utf8_split(b"ab" + euro) == (b"ab" + euro, b"")
    assert utf8_split(b"ab" + euro[:2]) == (b"ab", euro[:2])
    assert utf8_split(b"ab" + euro[:1]) == (b"ab", euro[:1])
    assert utf8_split(b"\xff\xfe") == (b"\xff\xfe", b"")
    assert utf8_split(b"") == (b"", b"")
    assert exit_status(-9) == 137
    assert exit_status(3) == 3


def test_terminals_follow_the_policy_mode_unless_explicit() -> None:
    assert Policy.from_dict({"mode": "permissive"}).terminals_allowed is True
    assert Policy.from_dict({"mode": "strict"}).terminals_allowed is False
    assert Policy.from_dict({"mode": "strict", "allow_terminals": True}).terminals_allowed
    assert not Policy.from_dict({"allow_terminals": False}).terminals_allowed
    with pytest.raises(ValueError, match="allow_terminals"):
        Policy.from_dict({"allow_terminals": "yes"})
    assert "allow_terminals" not in Policy.from_dict({}).to_dict()
    # On the wire the hub sends the effective switch; nothing sent (an older hub) refuses.
    assert not policy_from_pb(mesh_pb2.SandboxPolicy()).terminals_allowed
    wire = mesh_pb2.SandboxPolicy(mode=mesh_pb2.SandboxPolicy.STRICT, allow_terminals=True)
    assert policy_from_pb(wire).terminals_allowed


def test_terminal_config_section(tmp_path: Path) -> None:
    base = {"hub": {"address": "h:1"}, "node_id": "n"}
    config = parse_config(
        {**base, "terminal": {"enabled": False, "idle_timeout_s": 60, "max_sessions": 3}},
        config_path=tmp_path / "c.yaml",
    )
    assert (config.terminal_enabled, config.terminal_idle_timeout) == (False, 60.0)
    assert config.terminal_max_sessions == 3
    with pytest.raises(ValueError, match="terminal.enabled"):
        parse_config({**base, "terminal": {"enabled": "no"}}, config_path=tmp_path / "c.yaml")


def test_the_shell_gets_default_signals_whatever_the_agent_ignores(tmp_path: Path) -> None:
    """An agent started under `nohup` (SIGHUP ignored) or by a parent that ignores Ctrl-C must
    still give shells where Ctrl-C and hang-up work: ignored signals survive exec, and bash hands
    what it was started with to the commands it runs (here: grep, reading its own status)."""
    code = f"""
import asyncio, signal, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
from cortex.testing import wait_until_async
from mesh.tests.test_agent_terminals import Node, TerminalLimits

async def main():
    box = Node(__import__("pathlib").Path({str(tmp_path)!r}),
               TerminalLimits(window_bytes=64 * 1024, idle_timeout=3600))
    session = await box.open()
    box.type(session, "grep -E '^Sig(Ign|Blk)' /proc/self/status; echo done-$((1+1))\\n")
    await wait_until_async(lambda: "done-2" in box.output(session))
    print(box.output(session))
    await box.manager.stop_all(timeout=10)

asyncio.run(main())
"""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    ignored = int(re.search(r"SigIgn:\s*([0-9a-f]+)", out).group(1), 16)  # type: ignore[union-attr]
    blocked = int(re.search(r"SigBlk:\s*([0-9a-f]+)", out).group(1), 16)  # type: ignore[union-attr]
    for number in (signal.SIGINT, signal.SIGHUP):
        assert not ignored & (1 << (number - 1)), out
        assert not blocked & (1 << (number - 1)), out
