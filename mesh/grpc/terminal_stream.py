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
import contextlib
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from cortex.errors import ValidationFailed
from mesh import events
from mesh.agent.pb import mesh_pb2
from mesh.grpc import messages
from mesh.selectors.terminals import text_of
from mesh.services import aio, terminal_keys, terminals

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
#: Keys of inputs sent live remembered per stream (their "stored" bells follow soon after).
SENT_KEYS = 4096
#: Writers (sockets) whose last input sent is remembered per stream.
SENT_WRITERS = 1024
#: Longest wait for terminal output to be stored when a stream ends.
END_FLUSH_SECONDS = 5.0
#: Seconds sent inputs wait before they are marked sent in one write (not one per keystroke).
MARK_DELAY = 0.25
_FLUSH = terminals.TerminalChunkIn("", 0, 0.0, b"")

logger = logging.getLogger("cortex.mesh.grpc")


class TerminalStream:
    """One stream's terminal state: the output queue and the task that stores it, and which
    inputs this stream has sent (stored seqs per session, keys of those sent live)."""

    __slots__ = (
        "joined",
        "keys",
        "marker",
        "marks",
        "queue",
        "resend",
        "sent",
        "task",
        "waiting",
        "writers",
    )

    def __init__(self) -> None:
        # The output queue and its store task exist from the first output on (most streams
        # never carry a terminal).
        self.queue: asyncio.Queue[terminals.TerminalChunkIn] | None = None
        self.task: asyncio.Task[None] | None = None
        #: True once Hello's stored opens, inputs and closes are sent: later keystrokes wait for
        #: it (on `waiting`), so they never overtake what was typed before the stream joined.
        self.joined = False
        self.waiting: asyncio.Future[None] | None = None
        #: At Hello: how many inputs marked sent to send again (the node applies a key once).
        self.resend = 0
        self.sent: dict[str, int] = {}  # session -> the highest stored seq sent or seen sent
        self.keys: OrderedDict[str, None] = OrderedDict()  # keys sent (bounded)
        self.writers: OrderedDict[str, int] = OrderedDict()  # writer -> its last input sent
        self.marks: dict[str, int] = {}  # sent, not yet marked in the database
        self.marker: asyncio.Task[None] | None = None


def _stream(conn: NodeConnection) -> TerminalStream:
    if conn.terminals is None:
        conn.terminals = TerminalStream()
    return conn.terminals


def _queue(conn: NodeConnection) -> asyncio.Queue[terminals.TerminalChunkIn]:
    stream = _stream(conn)
    if stream.queue is None:
        stream.queue = asyncio.Queue(QUEUE_CHUNKS)
        stream.task = asyncio.create_task(_pump(conn, stream.queue), name=f"terms-{conn.node_id}")
        stream.task.add_done_callback(conn._ended)
    return stream.queue


def session_id_of(value: str) -> str:
    """A session id from the node: the hub's own UUIDs only."""
    return messages.task_id_of(value)


async def hello(conn: NodeConnection, hello: mesh_pb2.Hello) -> None:
    """After Welcome: end sessions the node no longer holds, hang up those it holds that the
    hub ended meanwhile (`lost` while it was away), then send what is pending: opens, the
    stored input not sent (and, to a node that applies each key once, the last ones sent:
    it may have missed them), closes. Keystrokes rung meanwhile wait."""
    stream = _stream(conn)  # before any await: a doorbell answered meanwhile sees `joined`
    held = list(hello.terminal_ids)
    if len(held) > MAX_HELD_TERMINALS:
        raise ValidationFailed("Too many held terminals.", code="too_many_held_terminals")
    held = [session_id_of(h) for h in held]
    await aio.terminals_reconcile(node_id=conn.node_id, held=held)
    for session_id in await aio.terminals_ended_among(node_id=conn.node_id, held=held):
        close = mesh_pb2.TerminalClose(session_id=session_id, reason="ended by the hub")
        conn.send(mesh_pb2.HubMessage(terminal_close=close))
    stream.resend = terminal_keys.KEEP_SENT if hello.terminal_input_keys else 0
    await deliver(conn)
    stream.resend = 0
    stream.joined = True
    if stream.waiting is not None:
        stream.waiting.set_result(None)


async def deliver(conn: NodeConnection) -> None:
    """Send TerminalOpen for stored sessions not yet opened, the stored input this stream has
    not sent (in order), then TerminalClose for closes."""
    opening, closing = await aio.terminals_pending(node_id=conn.node_id)
    for session_id, cols, rows in opening:
        conn.send(
            mesh_pb2.HubMessage(
                terminal_open=mesh_pb2.TerminalOpen(session_id=session_id, cols=cols, rows=rows)
            )
        )
    await _send_stored(conn)
    for session_id in closing:
        close = mesh_pb2.TerminalClose(session_id=session_id, reason="closed by the user")
        conn.send(mesh_pb2.HubMessage(terminal_close=close))


async def answer(conn: NodeConnection, message: dict[str, Any]) -> None:
    """A terminal doorbell: pending opens and closes; a live keystroke or resize (sent at once);
    or a stored one (sent from storage unless sent live, with any stored before it that this
    stream has not sent). Waits until Hello's part is sent."""
    reason = message.get("reason")
    session_id = str(message.get("session", ""))
    key = str(message.get("key", ""))
    stream = _stream(conn)
    if not stream.joined:
        if stream.waiting is None:
            stream.waiting = asyncio.get_running_loop().create_future()
        await asyncio.shield(stream.waiting)
    if reason == terminals.RING_TERMINAL:
        await deliver(conn)
    elif reason == terminals.RING_TERMINAL_ENDED:
        for ended in message.get("ended", [])[:MAX_HELD_TERMINALS]:
            close = mesh_pb2.TerminalClose(session_id=str(ended), reason="ended by the hub")
            conn.send(mesh_pb2.HubMessage(terminal_close=close))
    elif reason in (terminals.RING_TERMINAL_INPUT, terminals.RING_TERMINAL_RESIZE):
        order = terminal_keys.key_order(key)
        if order is None or key in stream.keys:
            return
        last = stream.writers.get(order[0])
        if last != order[1] - 1 and not (last is None and order[1] == 1):
            return  # an earlier input of its socket is not here yet: this one follows it, stored
        resize = reason == terminals.RING_TERMINAL_RESIZE
        kind, data = ("resize", "") if resize else ("input", str(message.get("data", "")))
        cols, rows = (int(message["cols"]), int(message["rows"])) if resize else (0, 0)
        _send_input(conn, session_id, 0, key, kind, data, cols, rows)
        _remember(stream, key)
    elif reason == terminals.RING_TERMINAL_STORED:
        seq = int(message.get("seq") or 0)
        last = stream.sent.get(session_id)
        if last is not None and seq <= last:
            return  # sent from storage already
        if last is not None and seq == last + 1 and key in stream.keys:
            _sent(conn, stream, session_id, seq)  # sent live; nothing stored before it is owed
            return
        await _send_stored(conn)


async def _send_stored(conn: NodeConnection) -> None:
    """Send, in order, the stored input this stream has not sent (live inputs only noted)."""
    stream = _stream(conn)
    stored = await aio.terminal_inputs_to_send(
        node_id=conn.node_id, after=dict(stream.sent), resend=stream.resend
    )
    for session_id, seq, key, kind, data, cols, rows in stored:
        if seq <= stream.sent.get(session_id, 0):
            continue
        if key not in stream.keys:  # its live bell, if still to come, is then skipped
            _send_input(conn, session_id, seq, key, kind, data, cols, rows)
        _remember(stream, key)
        _sent(conn, stream, session_id, seq)


def _remember(stream: TerminalStream, key: str) -> None:
    """Note an input key as sent on this stream, and its writer's place."""
    stream.keys[key] = None
    if len(stream.keys) > SENT_KEYS:
        stream.keys.popitem(last=False)
    order = terminal_keys.key_order(key)
    if order is not None:
        writer, n = order
        stream.writers[writer] = max(stream.writers.pop(writer, 0), n)
        if len(stream.writers) > SENT_WRITERS:
            stream.writers.popitem(last=False)


def _send_input(
    conn: NodeConnection,
    session_id: str,
    seq: int,
    key: str,
    kind: str,
    data: str,
    cols: int,
    rows: int,
) -> None:
    """One input or resize onto the stream (the node applies each key once)."""
    if kind == "resize":
        resize = mesh_pb2.TerminalResize(
            session_id=session_id, cols=cols, rows=rows, seq=seq, key=key
        )
        conn.send(mesh_pb2.HubMessage(terminal_resize=resize))
    else:
        keys = mesh_pb2.TerminalInput(
            session_id=session_id, data=data.encode("utf-8", "replace"), seq=seq, key=key
        )
        conn.send(mesh_pb2.HubMessage(terminal_input=keys))


def _sent(conn: NodeConnection, stream: TerminalStream, session_id: str, seq: int) -> None:
    """Note a stored input as sent on this stream; the database hears of it in a while."""
    stream.sent[session_id] = seq
    stream.marks[session_id] = seq
    if stream.marker is None or stream.marker.done():
        stream.marker = asyncio.create_task(_mark(conn, stream), name=f"marks-{conn.node_id}")


async def _mark(conn: NodeConnection, stream: TerminalStream) -> None:
    """Mark sent inputs in the database every MARK_DELAY while there are any (frees the
    session's backlog and trims its stored rows)."""
    while stream.marks:
        await asyncio.sleep(MARK_DELAY)
        marks, stream.marks = stream.marks, {}
        try:
            await aio.terminal_inputs_sent(node_id=conn.node_id, sent=marks)
        except Exception:  # marks only free backlog: the next one, or the node's Hello, covers it
            logger.warning("marking terminal input sent for %s failed", conn.node_id, exc_info=True)


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
        await events.asend(terminals.terminal_group(chunk.session_id), frame)
        await _queue(conn).put(chunk)
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
    if stream is None or stream.queue is None or stream.task is None:
        return
    queue, task = stream.queue, stream.task

    async def flushed() -> None:
        await queue.put(_FLUSH)
        await queue.join()

    joined = asyncio.ensure_future(flushed())
    await asyncio.wait({joined, task}, return_when=asyncio.FIRST_COMPLETED)
    if not joined.done():
        joined.cancel()
        await task


async def end(conn: NodeConnection) -> None:
    """The stream ended (a node that died included): store the output it brought (watchers saw
    it; no node will send it again), within END_FLUSH_SECONDS, then stop the store task."""
    stream = conn.terminals
    if stream is None or stream.task is None:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(flush(conn), timeout=END_FLUSH_SECONDS)
    stream.task.cancel()


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
