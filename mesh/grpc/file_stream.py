"""Stream a staged push to its node as FileChunk messages, right after the task's TaskAssign.

One coroutine per push on the connection that delivered the task; pushes on one stream go one
after the other, so the first file is complete (and its task slot free again) as early as
possible. The blob is read from storage in a worker thread, one chunk ahead of the stream, and
the next chunk is queued only once the connection's outbox has drained, so a file is never more
than two chunks in memory however large it is. The push stops when the stream closes or the
node reports the task's result; it is not resumed on another stream (the node then fails the
task as incomplete).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import IO, TYPE_CHECKING, Any

from mesh.agent.pb import mesh_pb2
from mesh.services.push_blobs import push_blob_of, push_blob_open

if TYPE_CHECKING:
    from mesh.grpc.connection import NodeConnection
    from mesh.models import Task

logger = logging.getLogger("cortex.mesh.grpc")

#: Payload bytes per FileChunk (the node accepts messages up to 4 MiB).
CHUNK_BYTES = 1024 * 1024

#: Pushes under way in this process, by (connection id, task id), and the newest per connection:
#: transport state only, like the outbox; what must be pushed is always read from the task.
_ACTIVE: dict[tuple[str, str], asyncio.Task[None]] = {}
_NEWEST: dict[str, asyncio.Task[None]] = {}


def start(conn: NodeConnection, task: Task) -> None:
    """Start streaming the task's staged blob, if it has one (a files write with `blob`)."""
    name = push_blob_of(kind=task.kind, payload=task.payload)
    key = (conn.connection_id, str(task.pk))
    if not name or key in _ACTIVE:
        return
    previous = _NEWEST.get(conn.connection_id)
    job = asyncio.create_task(_stream(conn, key[1], name, previous), name=f"mesh-push-{key[1]}")
    _ACTIVE[key] = _NEWEST[conn.connection_id] = job

    def forget(_: asyncio.Task[None]) -> None:
        _ACTIVE.pop(key, None)
        if _NEWEST.get(conn.connection_id) is job:
            del _NEWEST[conn.connection_id]

    job.add_done_callback(forget)


def stop(conn: NodeConnection, task_id: str) -> None:
    """The node has reported the task: whatever is left of its push is not needed."""
    job = _ACTIVE.pop((conn.connection_id, task_id), None)
    if job is not None:
        job.cancel()


async def _until(conn: NodeConnection, waiting: asyncio.Future[Any]) -> Any:
    """Await `waiting` (never cancelling it: it may be shared), or raise CancelledError once
    the stream has closed."""
    if not waiting.done():
        closed = asyncio.ensure_future(conn.closed.wait())
        try:
            await asyncio.wait({waiting, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if not waiting.done():
            raise asyncio.CancelledError
    return waiting.result()


async def _stream(
    conn: NodeConnection, task_id: str, name: str, previous: asyncio.Task[None] | None
) -> None:
    handle: IO[bytes] | None = None
    ahead: asyncio.Future[bytes] | None = None
    try:
        if previous is not None:  # one push at a time per stream: the first one ends first
            await _until(conn, asyncio.ensure_future(asyncio.wait({previous})))
        handle = await asyncio.to_thread(push_blob_open, name=name)
        read = handle.read
        offset = 0
        data = await _until(conn, asyncio.ensure_future(asyncio.to_thread(read, CHUNK_BYTES)))
        while True:
            # A short read is the end; after a full one, read on while this chunk goes out.
            ahead = (
                asyncio.ensure_future(asyncio.to_thread(read, CHUNK_BYTES))
                if len(data) == CHUNK_BYTES
                else None
            )
            message = mesh_pb2.HubMessage()
            chunk = message.file_chunk  # filled in place: a nested constructor copies data twice
            chunk.task_id, chunk.offset, chunk.data = task_id, offset, data
            chunk.eof = ahead is None
            conn.send(message)
            offset += len(data)
            await _until(conn, conn.outbox.drained())  # back-pressure: written before the next
            if ahead is None:
                return
            data = await _until(conn, ahead)
    except asyncio.CancelledError:
        return
    except Exception:  # the node fails the task as incomplete at its deadline
        logger.exception("push of task %s to node %s failed", task_id, conn.node_id)
    finally:
        if ahead is not None and not ahead.done():
            ahead.cancel()
        if handle is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(handle.close)
