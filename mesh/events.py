"""Channel-layer group names and frame types of the mesh app.

The channel layer is a doorbell: a message in `NODE_GROUP` tells the runmesh that holds the
node's stream to look at the database; messages in the console groups are live frames for
watchers, who catch up over REST when one is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from cortex.patches.asgiref_loops import call_in_home_loop

logger = logging.getLogger("cortex.mesh")

#: Doorbell for the runmesh holding the node's stream.
NODE_GROUP = "mesh.node.{node_id}"
#: Live frames for one node's watchers: node.status, node.stats, task.*.
NODE_CONSOLE_GROUP = "mesh.console.{node_id}"
#: Status and stats of every node one user may see.
USER_NODES_GROUP = "mesh.user.{user_id}"
#: Doorbell for anyone waiting on one task's state.
TASK_GROUP = "mesh.task.{task_id}"

# Doorbell message type (handled by the stream holder) and its reasons.
DOORBELL = "mesh.doorbell"
RING_TASKS = "task.ready"
RING_CANCEL = "task.cancel"
RING_POLICY = "policy.update"
RING_ROTATE = "credential.rotate"
RING_KICK = "node.kick"
TASK_CHANGED = "task.changed"

# Console frame types.
NODE_STATUS = "node.status"
NODE_STATS = "node.stats"
#: Stats of many nodes in one frame (one per viewer per heartbeat flush, `/ws/me/`).
NODES_STATS = "nodes.stats"
TASK_STARTED = "task.started"
TASK_OUTPUT = "task.output"
TASK_FINISHED = "task.finished"

_INVALID = re.compile(r"[^A-Za-z0-9._-]")


def group_name(template: str, **values: Any) -> str:
    """Format a group name and make it valid for Channels (ASCII [A-Za-z0-9._-], < 100 chars)."""
    return _INVALID.sub("_", template.format(**values))[:99]


def frame_seq() -> int:
    """Frame order for watchers across processes: microseconds since the epoch."""
    return time.time_ns() // 1000


async def asend(group: str, message: dict[str, Any]) -> None:
    """Ring a group; a full or broken layer costs latency, never data, so errors are logged."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group, message)
    except Exception:  # the layer is a doorbell: losing a message must not fail the caller
        logger.warning("channel layer group_send to %s failed", group, exc_info=True)


#: Set by `collect_frames` around a unit of DB work run from the event loop: frames due after
#: commit are gathered here and sent by the loop (one pipelined hop) instead of the DB thread
#: blocking on a hop back into the loop for each of them.
_collected: ContextVar[list[tuple[str, dict[str, Any]]] | None] = ContextVar(
    "mesh_collected_frames", default=None
)


def send_now(group: str, message: dict[str, Any]) -> None:
    """Synchronous `asend` (callers outside transactions)."""
    async_to_sync(asend)(group, message)


def _committed(messages: list[tuple[str, dict[str, Any]]]) -> None:
    collected = _collected.get()
    if collected is not None:
        collected.extend(messages)
    elif not call_in_home_loop(send_soon, messages):  # a server's loop sends them meanwhile
        async_to_sync(asend_many)(messages)


def send_on_commit(group: str, message: dict[str, Any]) -> None:
    """Ring a group once the current transaction commits, so rollbacks are never announced."""
    transaction.on_commit(lambda: _committed([(group, message)]))


@contextlib.contextmanager
def collected() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Gather (not send) the frames queued after commit inside this block."""
    frames: list[tuple[str, dict[str, Any]]] = []
    token = _collected.set(frames)
    try:
        yield frames
    finally:
        _collected.reset(token)


@contextlib.asynccontextmanager
async def collect_frames() -> AsyncIterator[None]:
    """Hand the frames that sync code run inside this block queues after commit to the loop's
    ordered sender once the block ends (`mesh.services.aio.db_unit` uses it): the caller
    goes on (a node gets its ResultAck) while Redis is still being told."""
    with collected() as frames:
        try:
            yield
        finally:
            if frames:
                send_soon(frames)


#: Most frames serialised and sent in one go by the loop's sender.
SEND_SLICE = 128


class _Sender:
    """One per event loop: sends batches of frames one after another, in the order given."""

    __slots__ = ("batches", "idle", "task")

    def __init__(self) -> None:
        self.batches: deque[list[tuple[str, dict[str, Any]]]] = deque()
        self.task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    async def run(self) -> None:
        try:
            while self.batches:
                batch = self.batches.popleft()
                # A flush of 1,000 beats has over 1,000 frames: serialised in slices, so the
                # streams' own messages (acks) get the loop in between.
                for start in range(0, len(batch), SEND_SLICE):
                    await asend_many(batch[start : start + SEND_SLICE])
        finally:
            self.task = None
            self.idle.set()


_senders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sender] = (
    weakref.WeakKeyDictionary()
)


def send_soon(messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Send `messages` from this loop in the background, after everything handed over before
    (watchers see frames in the order they were committed); errors are logged."""
    loop = asyncio.get_running_loop()
    sender = _senders.get(loop)
    if sender is None:
        sender = _senders[loop] = _Sender()
    sender.batches.append(messages)
    if sender.task is None:
        sender.idle.clear()
        sender.task = loop.create_task(sender.run(), name="mesh-frames")


async def sent() -> None:
    """Wait until every frame handed to `send_soon` on this loop is sent (a stop, a test)."""
    sender = _senders.get(asyncio.get_running_loop())
    if sender is not None:
        await sender.idle.wait()


async def asend_many(messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Ring many groups from one coroutine (one thread hop for a whole batch), in order.

    The Redis layer pipelines the whole batch (`cortex.patches.channels_redis_layer`); other
    layers get the sends one after another. Errors are logged, as in `asend`.
    """
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    many = getattr(layer, "group_send_many", None)
    if many is None:
        for group, message in messages:
            await asend(group, message)
        return
    try:
        await many(messages)
    except Exception:  # the layer is a doorbell: losing frames must not fail the caller
        logger.warning("channel layer group_send_many (%d) failed", len(messages), exc_info=True)


def send_many_on_commit(messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Ring many groups once the transaction commits, in one hop (batched heartbeat frames)."""
    if messages:
        transaction.on_commit(lambda: _committed(messages))


def ring_node(node_id: str, reason: str, *, on_commit: bool = True) -> None:
    """Tell whichever runmesh holds the node's stream to look at the database."""
    group = group_name(NODE_GROUP, node_id=node_id)
    message = {"type": DOORBELL, "reason": reason, "node_id": node_id}
    if on_commit:
        send_on_commit(group, message)
    else:
        send_now(group, message)


def console_frame(
    node_id: str, frame_type: str, /, *, seq: int | None = None, **payload: Any
) -> None:
    """Queue a live frame for the node's watchers, sent after commit."""
    message = {"type": frame_type, "seq": frame_seq() if seq is None else seq, **payload}
    send_on_commit(group_name(NODE_CONSOLE_GROUP, node_id=node_id), message)


def task_changed(task_id: Any, status: str) -> None:
    """Wake waiters of one task (after commit)."""
    send_on_commit(
        group_name(TASK_GROUP, task_id=task_id), {"type": TASK_CHANGED, "status": status}
    )
