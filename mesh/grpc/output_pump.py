"""Node output from a Connect stream to storage: batched, acked after commit, held past the cap.

The reader queues each TaskOutput on the connection's bounded `output` queue (a full queue stops
the reader, and HTTP/2 flow control the node). `pump` takes whatever is queued, up to
OUTPUT_BATCH_CHUNKS or OUTPUT_BATCH_BYTES, stores it in one transaction and acks each task once.
A batch costs about the same for one chunk as for many (a thread hop, a transaction, an ack), so
during a flood a short one waits up to OUTPUT_LINGER for OUTPUT_LINGER_CHUNKS, which makes
batches a few times larger; a lone line does not wait.

Past a task's cap a batch only commits what falls out of the tail: the newest chunks that fit
are *held* here, neither stored nor acked, so the node keeps them and resends them after a cut.
They are passed back first in the next batch and stored when the output pauses
(OUTPUT_HOLD_IDLE), when they have been held OUTPUT_HOLD_MAX, when OUTPUT_HOLD_BYTES are held,
and before a result, a goodbye or the end of the stream (`flush`). So a flood costs one small
transaction per batch instead of writing every chunk and deleting it moments later.

Watchers get the new output of each batch as live frames. During a flood they go at most every
MESH_LIVE_FRAME_INTERVAL (settings), each covering everything since the previous ones as
one bigger batch would (`LiveNews`); otherwise, and before a flush, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import TYPE_CHECKING

from django.conf import settings

from cortex import faults
from mesh import events
from mesh.agent.pb import mesh_pb2
from mesh.services import aio
from mesh.services.live_output import LiveNews
from mesh.services.output import OutputChunk

if TYPE_CHECKING:
    from mesh.grpc.connection import NodeConnection

#: One output transaction takes whatever is queued, up to this many chunks or bytes.
OUTPUT_BATCH_CHUNKS = 64
OUTPUT_BATCH_BYTES = 2 * 1024 * 1024
#: A batch short of this many chunks waits up to OUTPUT_LINGER seconds for more.
OUTPUT_LINGER = 0.002
OUTPUT_LINGER_CHUNKS = 32
#: A chunk this big is bulk output (a full read of the node's pipe), not a line.
OUTPUT_BULK_BYTES = 32 * 1024
OUTPUT_HOLD_IDLE = 0.05
OUTPUT_HOLD_MAX = 1.0
OUTPUT_HOLD_BYTES = 16 * 1024 * 1024
#: Queued by `flush`: store whatever is held.
FLUSH = OutputChunk("", 0, "stdout", b"")


async def pump(conn: NodeConnection, queue: asyncio.Queue[OutputChunk]) -> None:
    """Store the connection's queued output until cancelled (an error ends the stream)."""
    loop = asyncio.get_running_loop()
    held: list[OutputChunk] = []
    due = 0.0  # when what is held must be stored at the latest
    news = LiveNews()  # stored or held, not yet sent to watchers
    frame_at = 0.0  # during a flood, frames go at most every MESH_LIVE_FRAME_INTERVAL
    group = events.group_name(events.NODE_CONSOLE_GROUP, node_id=conn.node_id)
    while True:
        batch: list[OutputChunk] = []
        wake = min(due, loop.time() + OUTPUT_HOLD_IDLE) if held else None
        if news:
            wake = frame_at if wake is None else min(wake, frame_at)
        with contextlib.suppress(TimeoutError):  # a pause (a timeout leaves the item queued)
            async with asyncio.timeout_at(wake):
                batch.append(await queue.get())
        size = sum(len(c.data) for c in batch)
        while batch and len(batch) < OUTPUT_BATCH_CHUNKS and size < OUTPUT_BATCH_BYTES:
            if queue.empty():
                break
            batch.append(queue.get_nowait())
            size += len(batch[-1].data)
        # A flood: more than one chunk was waiting, or a chunk as big as a full read.
        flood = len(batch) > 1 or size >= OUTPUT_BULK_BYTES
        if flood and FLUSH not in batch:
            # A batch costs about the same for one chunk as for thirty: while a flood is coming
            # in, wait a moment for more. A lone line and a flush go on at once.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(OUTPUT_LINGER):
                    while (
                        len(batch) < OUTPUT_LINGER_CHUNKS
                        and size < OUTPUT_BATCH_BYTES
                        and batch[-1] is not FLUSH
                    ):
                        batch.append(await queue.get())
                        size += len(batch[-1].data)
        chunks = [c for c in batch if c is not FLUSH]
        hold = (
            len(chunks) == len(batch) > 0
            and (not held or loop.time() < due)
            and sum(len(c.data) for c in held) < OUTPUT_HOLD_BYTES
        )
        try:
            if held or chunks:
                # Stored by seq, so a retry after a database outage stores nothing twice; the
                # stream stays open meanwhile (the full queue slows the node down).
                stored = await faults.retry_while_down(
                    functools.partial(
                        aio.output_store_batch,
                        node_id=conn.node_id,
                        chunks=held + chunks,
                        hold=hold,
                        announce=False,
                        frames=False,
                    ),
                    what=f"output of node {conn.node_id}",
                    give_up=conn.closed.is_set,
                )
                news.add(stored.news)
                if stored.held and not held:
                    due = loop.time() + OUTPUT_HOLD_MAX
                held = stored.held
                for task_id, seq in stored.acked.items():
                    ack = mesh_pb2.OutputAck(task_id=task_id, seq=seq)
                    conn.send(mesh_pb2.HubMessage(output_ack=ack))
            # Frames are paced only during a flood: a line printed now, and everything before a
            # result (a flush), goes at once.
            quiet = not flood and queue.empty()
            if news and (quiet or loop.time() >= frame_at or len(chunks) < len(batch)):
                # The loop's ordered sender: after the frames committed before these, off the
                # DB thread, and before the task's end (`task.finished` goes the same way).
                events.send_soon([(group, frame) for frame in news.take()])
                frame_at = loop.time() + float(settings.MESH_LIVE_FRAME_INTERVAL)
        finally:  # acks are queued before a flush waiting on the queue goes on
            for _ in batch:
                queue.task_done()


async def flush(conn: NodeConnection, queue: asyncio.Queue[OutputChunk]) -> None:
    """Wait until every chunk received so far is stored, held ones too; a failed pump raises."""

    async def flushed() -> None:
        await queue.put(FLUSH)
        await queue.join()

    joined, store = asyncio.ensure_future(flushed()), conn.output_store
    waiting = {joined} if store is None else {joined, store}
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if not joined.done() and store is not None:
        joined.cancel()
        await store  # the store failed: raise its error here too
