"""Terminal output is stored in batches: one database write per flush interval, not per chunk
(mesh/grpc/terminal_stream.py); a node sends streamed PTY output in chunks of at most its
read size (mesh/agent/terminals.py). No timings are asserted: batches and chunks are counted."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

from cortex.testing import wait_until_async
from mesh.agent.pb import mesh_pb2
from mesh.agent.skills.shell import build_env
from mesh.agent.terminals import BULK_CHUNK, Terminal, TerminalLimits, TerminalManager
from mesh.grpc import terminal_stream
from mesh.services.terminals import TerminalChunkIn

BASH = shutil.which("bash") or "/bin/bash"


def _chunk(seq: int, size: int = 10) -> TerminalChunkIn:
    return TerminalChunkIn("s", seq, 0.0, b"x" * size)


async def test_chunks_arriving_one_by_one_make_one_batch() -> None:
    queue: asyncio.Queue[TerminalChunkIn] = asyncio.Queue(terminal_stream.QUEUE_CHUNKS)
    loop = asyncio.get_running_loop()
    queue.put_nowait(_chunk(1))
    for seq in (2, 3, 4):  # each arrives after the batch began (a keystroke's echo at a time)
        loop.call_soon(queue.put_nowait, _chunk(seq))
    batch = await terminal_stream._gather(queue)
    assert [c.seq for c in batch] == [1, 2, 3, 4]


async def test_a_flush_or_a_full_batch_ends_the_batch_at_once() -> None:
    queue: asyncio.Queue[TerminalChunkIn] = asyncio.Queue(terminal_stream.QUEUE_CHUNKS)
    queue.put_nowait(_chunk(1))
    queue.put_nowait(terminal_stream._FLUSH)
    batch = await terminal_stream._gather(queue)
    assert batch == [_chunk(1), terminal_stream._FLUSH]
    big = terminal_stream.FLUSH_BYTES // 2
    for seq in (1, 2, 3):
        queue.put_nowait(_chunk(seq, big))
    batch = await terminal_stream._gather(queue)
    assert [c.seq for c in batch] == [1, 2, 3]  # what was queued; it writes without waiting
    assert queue.empty()


async def test_streamed_output_leaves_the_node_whole_in_bounded_chunks(tmp_path: Path) -> None:
    sent: list[mesh_pb2.NodeMessage] = []
    manager = TerminalManager(TerminalLimits(idle_timeout=3600), sent.append)
    session = str(uuid.uuid4())
    env = build_env(allow=("LANG",), fixed={}, declared=None, home=tmp_path)
    opening = mesh_pb2.TerminalOpen(session_id=session, cols=80, rows=24)
    await manager.open(opening, refusal=None, program=BASH, cwd=tmp_path, env=env)
    try:
        total = 2_000_000
        manager.input(
            session, f"stty -echo; head -c {total} /dev/zero | tr '\\0' '\\121'; exit\n".encode()
        )
        deadline = asyncio.get_running_loop().time() + 60
        while not any(m.WhichOneof("body") == "terminal_exit" for m in sent):
            assert asyncio.get_running_loop().time() < deadline
            if session in manager.sessions:  # the hub stored everything so far
                manager.ack(session, manager.sessions[session].seq)
            await asyncio.sleep(0.05)
        chunks = [m.terminal_output.data for m in sent if m.WhichOneof("body") == "terminal_output"]
        assert sum(c.count(b"Q") for c in chunks) == total
        # Every byte arrives once and no chunk passes the read size (the window is overshot by one
        # chunk at most). How many chunks it takes depends on the machine's speed: the
        # benchmark measures that, not this test.
        assert max(len(c) for c in chunks) <= manager.limits.read_size
    finally:
        await manager.stop_all(timeout=10)


class Stream:
    """Whether the node's stream is still writing (the agent's writer sets it)."""

    def __init__(self) -> None:
        self.writing = True

    def busy(self) -> bool:
        return self.writing


def _outputs(sent: list[mesh_pb2.NodeMessage]) -> list[bytes]:
    return [m.terminal_output.data for m in sent if m.WhichOneof("body") == "terminal_output"]


async def test_output_read_while_the_stream_writes_leaves_as_one_chunk(tmp_path: Path) -> None:
    sent: list[mesh_pb2.NodeMessage] = []
    stream = Stream()
    manager = TerminalManager(TerminalLimits(idle_timeout=3600), sent.append, stream.busy)
    session = str(uuid.uuid4())
    env = build_env(allow=("LANG",), fixed={}, declared=None, home=tmp_path)
    opening = mesh_pb2.TerminalOpen(session_id=session, cols=80, rows=24)
    await manager.open(opening, refusal=None, program=BASH, cwd=tmp_path, env=env)
    try:
        manager.input(session, b"for i in 1 2 3 4; do echo piece-$i; sleep 0.1; done; echo end\n")
        terminal = manager.sessions[session]
        await wait_until_async(lambda: b"piece-4\r\nend" in terminal.held)
        assert b"piece-1" not in b"".join(_outputs(sent))  # several reads, all held
        stream.writing = False
        manager.flush_held()  # the writer is free: one message carries it all
        last = _outputs(sent)[-1]
        assert all(f"piece-{i}".encode() in last for i in (1, 2, 3, 4))
        assert not terminal.held
        # An idle stream sends at once: a keystroke's echo is never held.
        manager.input(session, b"echo now-$((2+3))\n")
        await wait_until_async(lambda: b"now-5" in b"".join(_outputs(sent)))
    finally:
        await manager.stop_all(timeout=10)


async def test_held_output_leaves_before_the_exit_and_within_the_window(tmp_path: Path) -> None:
    sent: list[mesh_pb2.NodeMessage] = []
    limits = TerminalLimits(idle_timeout=3600, window_bytes=64 * 1024, read_size=16 * 1024)
    manager = TerminalManager(limits, sent.append, lambda: True)  # the stream never frees up
    session = str(uuid.uuid4())
    env = build_env(allow=("LANG",), fixed={}, declared=None, home=tmp_path)
    opening = mesh_pb2.TerminalOpen(session_id=session, cols=80, rows=24)
    await manager.open(opening, refusal=None, program=BASH, cwd=tmp_path, env=env)
    try:
        manager.input(session, b"yes\n")
        terminal = manager.sessions[session]
        await wait_until_async(lambda: not terminal.reading)  # the window is full: reading stops
        assert terminal.unacked_bytes + len(terminal.held) <= limits.window_bytes + limits.read_size
        assert max(len(c) for c in _outputs(sent)) <= limits.read_size
        manager.input(session, b"\x03")
        manager.ack(session, terminal.seq)
        manager.input(session, b"echo last-words; exit 3\n")
        while not any(m.WhichOneof("body") == "terminal_exit" for m in sent):
            manager.ack(session, terminal.seq)  # the hub stores on; output is read on
            await asyncio.sleep(0.05)
        ended = next(m.terminal_exit for m in sent if m.WhichOneof("body") == "terminal_exit")
        bodies = [m.WhichOneof("body") for m in sent]
        assert bodies[-1] == "terminal_exit" and ended.exit_code == 3
        assert b"last-words" in b"".join(_outputs(sent)) and not terminal.held
        assert ended.last_seq == sent[-2].terminal_output.seq
    finally:
        await manager.stop_all(timeout=10)


async def test_bulk_output_is_gathered_and_an_echo_after_it_still_leaves() -> None:
    """After a large chunk, what a read finds waits (up to the read size, a few ms at most) for
    more; after a small one it leaves at once. A pipe stands in for the PTY: same reads."""
    sent: list[mesh_pb2.NodeMessage] = []
    manager = TerminalManager(TerminalLimits(idle_timeout=3600), sent.append)
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    terminal = Terminal("s-gather", master=read_end)
    manager.sessions[terminal.session_id] = terminal
    try:
        os.write(write_end, b"k")
        manager._readable(terminal)  # a keystroke's echo: sent at once
        assert _outputs(sent) == [b"k"]
        os.write(write_end, b"Q" * BULK_CHUNK)
        manager._readable(terminal)  # after a small chunk: sent at once too
        assert len(_outputs(sent)) == 2
        os.write(write_end, b"tail")
        manager._readable(terminal)  # after a large one: gathered, not sent yet
        assert len(_outputs(sent)) == 2 and terminal.held == bytearray(b"tail")
        await wait_until_async(lambda: len(_outputs(sent)) == 3)  # the gather timer sends it
        assert _outputs(sent)[-1] == b"tail" and not terminal.held
        os.write(write_end, b"j")
        manager._readable(terminal)  # small again: at once
        assert _outputs(sent)[-1] == b"j"
    finally:
        os.close(read_end)
        os.close(write_end)
