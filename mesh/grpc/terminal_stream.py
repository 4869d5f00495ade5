"""Terminals on a node's Connect stream: opens, keystrokes and closes down; output and exits up.

Output is queued on a bounded queue (a full queue stops the stream's reader, and HTTP/2 flow
control the node) and stored in batches by one task per stream; each session is acked
(TerminalAck) after its chunks are committed, which is what lets the node read more of its PTY
(see mesh/agent/terminals.py). Watchers get each chunk as a `terminal.output` frame as soon as it
arrives, in order; storage follows (a re-attach and the recording read the rows).

A batch is one database write per `FLUSH_SECONDS` (sooner once `FLUSH_BYTES` are waiting, or
when an exit or the stream's end asks for a flush): a write per keystroke's echo would hold the
process (and its GIL) in the database for every key, and a write per small chunk caps bulk
output. Rows stay complete and ordered; only the ack, which paces the node, waits.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cortex.errors import ValidationFailed
from mesh.agent.pb import mesh_pb2
from mesh.grpc import messages
from mesh.selectors.terminals import text_of
from mesh.services import aio, terminal_local, terminals

if TYPE_CHECKING:
    from mesh.grpc.connection import NodeConnection

BATCH_CHUNKS = 256
QUEUE_CHUNKS = 256
#: A batch waits at most this long for more chunks before it is written.
FLUSH_SECONDS = 0.05
#: ... and is written at once when this much output is waiting (well under a node's window).
FLUSH_BYTES = 256 * 1024
#: How often a waiting batch looks at the queue.
GATHER_POLL = 0.005
MAX_HELD_TERMINALS = 256
_FLUSH = terminals.TerminalChunkIn("", 0, 0.0, b"")


class TerminalStream:
    """The terminal output queue of one stream and the task that stores it."""

    __slots__ = ("queue", "task")

    def __init__(self, conn: NodeConnection) -> None:
        self.queue: asyncio.Queue[terminals.TerminalChunkIn] = asyncio.Queue(QUEUE_CHUNKS)
        self.task = asyncio.create_task(_pump(conn, self.queue), name=f"terms-{conn.node_id}")
        self.task.add_done_callback(conn._ended)


def _stream(conn: NodeConnection) -> TerminalStream:
    if conn.terminals is None:
        conn.terminals = TerminalStream(conn)
    return conn.terminals


def session_id_of(value: str) -> str:
    """A session id from the node: the hub's own UUIDs only."""
    return messages.task_id_of(value)


async def hello(conn: NodeConnection, held: list[str]) -> None:
    """After Welcome: end sessions the node no longer holds, hang up those it holds that the
    hub ended meanwhile (`lost` while it was away), then send what is pending."""
    if len(held) > MAX_HELD_TERMINALS:
        raise ValidationFailed("Too many held terminals.", code="too_many_held_terminals")
    held = [session_id_of(h) for h in held]
    await aio.terminals_reconcile(node_id=conn.node_id, held=held)
    for session_id in await aio.terminals_ended_among(node_id=conn.node_id, held=held):
        close = mesh_pb2.TerminalClose(session_id=session_id, reason="ended by the hub")
        conn.send(mesh_pb2.HubMessage(terminal_close=close))
    await deliver(conn)


async def deliver(conn: NodeConnection) -> None:
    """Send TerminalOpen for stored sessions not yet opened and TerminalClose for closes."""
    opening, closing = await aio.terminals_pending(node_id=conn.node_id)
    for session_id, cols, rows in opening:
        conn.send(
            mesh_pb2.HubMessage(
                terminal_open=mesh_pb2.TerminalOpen(session_id=session_id, cols=cols, rows=rows)
            )
        )
    for session_id in closing:
        close = mesh_pb2.TerminalClose(session_id=session_id, reason="closed by the user")
        conn.send(mesh_pb2.HubMessage(terminal_close=close))


async def answer(conn: NodeConnection, message: dict[str, Any]) -> None:
    """A terminal doorbell: pending opens and closes, or a live keystroke or resize."""
    if message.get("reason") == terminals.RING_TERMINAL:
        await deliver(conn)
    elif not terminal_local.from_here(message):  # else: this stream had it directly
        live(conn, message)


def direct(conn: NodeConnection, message: dict[str, Any]) -> bool:
    """A doorbell from a socket of this process (`terminal_local`); False once the stream is
    closing. A keystroke goes out at once unless doorbells are being answered (an open reading
    the database): then it waits behind them, so it never overtakes its session's open."""
    if conn.closed.is_set():
        return False
    if message.get("reason") == terminals.RING_TERMINAL or conn.bell_task is not None:
        conn.ring(message)
    else:
        live(conn, message)
    return True


def live(conn: NodeConnection, message: dict[str, Any]) -> None:
    """Queue a keystroke or a resize for the node."""
    reason = message.get("reason")
    session_id = str(message.get("session", ""))
    if reason == terminals.RING_TERMINAL_INPUT:
        data = str(message.get("data", "")).encode("utf-8", "replace")
        conn.send(
            mesh_pb2.HubMessage(
                terminal_input=mesh_pb2.TerminalInput(session_id=session_id, data=data)
            )
        )
    elif reason == terminals.RING_TERMINAL_RESIZE:
        resize = mesh_pb2.TerminalResize(
            session_id=session_id, cols=int(message["cols"]), rows=int(message["rows"])
        )
        conn.send(mesh_pb2.HubMessage(terminal_resize=resize))


def attach(conn: NodeConnection) -> Callable[[dict[str, Any]], bool]:
    """Let sockets of this process type into the node through this stream directly."""
    sink = functools.partial(direct, conn)
    terminal_local.stream_attach(conn.node_id, sink)
    return sink


def detach(conn: NodeConnection, sink: Callable[[dict[str, Any]], bool] | None) -> None:
    if sink is not None:
        terminal_local.stream_detach(conn.node_id, sink)


async def receive(conn: NodeConnection, message: mesh_pb2.NodeMessage) -> None:
    """One terminal message from the node."""
    kind = message.WhichOneof("body")
    if kind == "terminal_output":
        out = message.terminal_output
        chunk = terminals.TerminalChunkIn(session_id_of(out.session_id), out.seq, out.at, out.data)
        # Watchers get it now (a keystroke's echo waits for no commit); storage follows, and
        # the ack that lets the node read on waits for storage. A re-attach reads the rows.
        # Awaited, not queued: the stream reads no faster than the layer takes frames, so
        # nothing piles up in this process (a full layer drops; watchers fill gaps from rows).
        frame = {"type": "terminal.output", "seq": out.seq, "data": text_of(out.data)}
        await terminals.terminal_output_publish(session_id=chunk.session_id, frame=frame)
        await _stream(conn).queue.put(chunk)
    elif kind == "terminal_opened":
        session_id = session_id_of(message.terminal_opened.session_id)
        await aio.terminal_opened(node_id=conn.node_id, session_id=session_id)
    elif kind == "terminal_exit":
        ended = message.terminal_exit
        session_id = session_id_of(ended.session_id)
        await flush(conn)  # the session's output is stored before its exit
        await aio.terminal_exited(
            node_id=conn.node_id,
            session_id=session_id,
            exit_code=ended.exit_code,
            error_code=ended.error_code,
            last_seq=ended.last_seq,
        )
        ack = mesh_pb2.TerminalAck(session_id=session_id, seq=ended.last_seq, final=True)
        conn.send(mesh_pb2.HubMessage(terminal_ack=ack))


async def flush(conn: NodeConnection) -> None:
    """Wait until every chunk received so far is stored; a failed store raises here."""
    stream = conn.terminals
    if stream is None:
        return

    async def flushed() -> None:
        await stream.queue.put(_FLUSH)
        await stream.queue.join()

    joined = asyncio.ensure_future(flushed())
    await asyncio.wait({joined, stream.task}, return_when=asyncio.FIRST_COMPLETED)
    if not joined.done():
        joined.cancel()
        await stream.task


async def _pump(conn: NodeConnection, queue: asyncio.Queue[terminals.TerminalChunkIn]) -> None:
    """Store queued output in batches until cancelled; ack each session after commit."""
    while True:
        batch = await _gather(queue)
        try:
            chunks = [c for c in batch if c is not _FLUSH]
            if not chunks:
                continue
            acked = await aio.terminal_output_store(node_id=conn.node_id, chunks=chunks)
            for session_id, seq in acked.items():
                ack = mesh_pb2.TerminalAck(session_id=session_id, seq=seq)
                conn.send(mesh_pb2.HubMessage(terminal_ack=ack))
        finally:
            for _ in batch:
                queue.task_done()


async def _gather(
    queue: asyncio.Queue[terminals.TerminalChunkIn],
) -> list[terminals.TerminalChunkIn]:
    """One batch: what arrives within FLUSH_SECONDS of its first chunk, up to FLUSH_BYTES or
    BATCH_CHUNKS; a flush request or a half-full queue ends it early."""
    loop = asyncio.get_running_loop()
    batch = [await queue.get()]
    size = len(batch[0].data)
    flush = batch[0] is _FLUSH
    deadline = loop.time() + FLUSH_SECONDS
    while True:
        while len(batch) < BATCH_CHUNKS and not queue.empty():
            chunk = queue.get_nowait()
            batch.append(chunk)
            size += len(chunk.data)
            flush = flush or chunk is _FLUSH
        if (
            flush
            or size >= FLUSH_BYTES
            or len(batch) >= BATCH_CHUNKS
            or queue.qsize() >= QUEUE_CHUNKS // 2
            or loop.time() >= deadline
        ):
            return batch
        await asyncio.sleep(min(GATHER_POLL, max(deadline - loop.time(), 0.0)))
