"""Task output intake: each (task, seq) stored once, capped per task keeping head and tail.

A task keeps its first `cap // 2` bytes (the head) and as many of its newest chunks as fit the
cap (the tail); `dropped_bytes` counts the rest exactly. Past the cap a flood would be written
only to be deleted moments later, so the batched intake can *hold* the newest chunks that fit
the tail (`output_store_batch(hold=True)`): they are neither stored nor acked (the node keeps
them until acked and resends them after a reconnect), and a batch commits and acks only what
falls out of the tail. The caller passes held chunks back first in its next batch and stores
them with `hold=False` when the output pauses, before a result and at the end of the stream.

Watchers get coalesced `task.output` frames of each batch (`mesh.services.live_output`); the
gRPC pump hands the new chunks of several batches to `LiveNews` instead and sends their frames
together, as if they were one batch. The full output stays available over REST.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cortex.errors import NotFound, ValidationFailed
from mesh import events, store
from mesh.models import OutputStreamName, Task, TaskOutputChunk, TaskStatus
from mesh.services.journal import _task_key
from mesh.services.live_output import live_frames
from mesh.services.secret_mask import MASK, known_secrets

_STREAMS = frozenset(OutputStreamName.values)  # `.values` builds a new list on every use

# A batch is a few statements by hand (`mesh.store`): through the ORM, building the queries
# cost more than running them, on every batch of a flood.


@dataclass(frozen=True)
class OutputChunk:
    """One TaskOutput as received, waiting for a batched store."""

    task_id: str
    seq: int
    stream: str
    data: bytes
    #: Handed back by an earlier batch: masked and announced already, neither stored nor acked.
    held: bool = False


@dataclass
class StoredBatch:
    """What a batch settled: the acked seq of each task, the chunks held in hand, and (when the
    caller sends them) the live frames for the node's console group."""

    acked: dict[str, int] = field(default_factory=dict)
    held: list[OutputChunk] = field(default_factory=list)
    group: str = ""
    frames: list[dict[str, Any]] = field(default_factory=list)
    #: With `frames=False`: the new (seq, stream, data) of each task, for `LiveNews`.
    news: dict[str, list[tuple[int, str, bytes]]] = field(default_factory=dict)


def output_append(*, node_id: str, task_id: str, seq: int, stream: str, data: bytes) -> int:
    """Store one output chunk unless its seq is already stored; returns the acked seq.

    Raises NotFound (`task_not_found`) for a task that is not this node's, with nothing stored.
    """
    chunk = OutputChunk(task_id, seq, stream, data)
    return output_store_batch(node_id=node_id, chunks=[chunk], hold=False).acked[task_id]


def output_append_many(*, node_id: str, chunks: list[OutputChunk]) -> dict[str, int]:
    """Store a batch of chunks in one transaction; returns the acked seq of each task."""
    return output_store_batch(node_id=node_id, chunks=chunks, hold=False).acked


def output_store_batch(
    *,
    node_id: str,
    chunks: list[OutputChunk],
    hold: bool,
    announce: bool = True,
    frames: bool = True,
) -> StoredBatch:
    """Store (or with `hold`, drop or hold) a batch in one transaction; live frames after commit.

    Chunks of a task come in seq order, held ones first; a seq already settled is ignored (a
    resend after a reconnect, or twice in one batch). A chunk for a task that is not this
    node's refuses the whole batch (NotFound `task_not_found`) with nothing stored. With
    `announce=False` the frames are returned instead, for a caller outside any transaction to
    send (`events.send_soon`) without holding up the database thread; with `frames=False` too,
    the new chunks are returned (`news`) for the caller to coalesce with later batches.
    """
    for chunk in chunks:
        if chunk.seq < 1:
            raise ValidationFailed("Output seq starts at 1.", code="invalid_seq")
        if chunk.stream not in _STREAMS:
            raise ValidationFailed("Unknown output stream.", code="invalid_stream")
    by_task: dict[str, list[OutputChunk]] = {}
    for chunk in chunks:
        by_task.setdefault(chunk.task_id, []).append(chunk)
    cap = int(settings.MESH_OUTPUT_CAP_BYTES)
    now = timezone.now()
    secrets = known_secrets()  # looked up once per batch; each chunk is masked on its own
    result = StoredBatch(group=events.group_name(events.NODE_CONSOLE_GROUP, node_id=node_id))
    rows: list[TaskOutputChunk] = []
    doomed: list[int] = []
    with transaction.atomic():
        # Lock in a fixed order so two batches touching the same tasks cannot deadlock.
        tasks = {task_id: _locked_task(node_id, task_id) for task_id in sorted(by_task)}
        for task_id, pending in by_task.items():
            task = tasks[task_id]
            fresh = _fresh(task=task, pending=pending, secrets=secrets)
            if fresh:
                news = [(c.seq, c.stream, c.data) for c in fresh if not c.held]
                if frames:
                    result.frames += live_frames(str(task.pk), news)
                elif news:
                    result.news[str(task.pk)] = news
                settled_seq = task.last_seq
                written, held, gone = _settle(task=task, fresh=fresh, cap=cap, hold=hold)
                rows += written
                doomed += gone
                result.held += held
                _save_counters(task, settled_seq, now)
            result.acked[task_id] = task.last_seq
        store.output_chunks_delete(pks=doomed)
        if rows:
            TaskOutputChunk.objects.bulk_create(rows)
        if result.frames and announce:
            events.send_many_on_commit([(result.group, frame) for frame in result.frames])
    return result


def _locked_task(node_id: str, task_id: str) -> Task:
    """The task's output counters, its row locked; NotFound unless it is this node's.

    An unsaved instance carrying only what a batch reads and writes (`_save_counters`).
    """
    key = _task_key(task_id)
    found = store.output_task_lock(key=key, node_id=node_id)
    if found is None:
        raise NotFound("No such task for this node.", code="task_not_found")
    status, last_seq, output_bytes, stored_bytes, dropped_bytes = found
    return Task(
        id=uuid.UUID(task_id),
        status=status,
        last_seq=last_seq,
        output_bytes=output_bytes,
        stored_bytes=stored_bytes,
        dropped_bytes=dropped_bytes,
    )


def _save_counters(task: Task, settled_seq: int, now: Any) -> None:
    """Write what a batch settled; a dispatched task is running from its first output on."""
    counters = [task.last_seq, task.output_bytes, task.stored_bytes, task.dropped_bytes]
    if task.status == TaskStatus.DISPATCHED:
        task.status = TaskStatus.RUNNING
        start = True
    elif task.last_seq != settled_seq:
        start = False
    else:
        return  # all held: nothing of this task changes yet
    store.output_counters_save(task_id=task.pk, counters=counters, now=now, start=start)


def _fresh(
    *, task: Task, pending: list[OutputChunk], secrets: Sequence[bytes]
) -> list[OutputChunk]:
    """The chunks after the task's settled seq, once each, masked (held ones are already)."""
    fresh: list[OutputChunk] = []
    last = task.last_seq
    for chunk in pending:
        if chunk.seq <= last:
            continue  # a resend after reconnect (or twice in this batch)
        last = chunk.seq
        if not chunk.held:
            data = chunk.data
            for secret in secrets:  # as mask_secrets does
                if secret in data:
                    data = data.replace(secret, MASK)
            if data is not chunk.data:
                chunk = dataclasses.replace(chunk, data=data)
        fresh.append(chunk)
    return fresh


def _settle(
    *, task: Task, fresh: list[OutputChunk], cap: int, hold: bool
) -> tuple[list[TaskOutputChunk], list[OutputChunk], list[int]]:
    """Cap a task about to take `fresh`; update its counters for what this batch settles.

    The oldest chunks after the head go first, stored or new; the newest chunk is always kept.
    New chunks dropped at once are never written. With `hold`, kept chunks newer than the last
    dropped one are held instead of written (and the stored tail is left alone until a new
    chunk falls out). Returns (rows to write, chunks held, pks of stored rows to delete).
    """
    offsets: list[int] = []
    end = task.output_bytes
    for chunk in fresh:
        offsets.append(end)
        end += len(chunk.data)
    excess = task.stored_bytes + (end - task.output_bytes) - cap
    skipped: set[int] = set()
    doomed: list[int] = []
    doomed_bytes = 0
    if excess > 0:
        head = cap // 2
        # Stored rows in seq order are the head while their running total is below it; a row
        # after the head has at least `head` bytes stored before it, so with no more than
        # `head` stored (a flood whose tail is held) there is none to look for.
        stored = store.output_stored_sizes(task_id=task.pk) if task.stored_bytes > head else []
        before = 0
        for pk, size in stored:
            if excess <= 0:
                break
            before += size
            if before - size >= head:
                doomed.append(pk)
                doomed_bytes += size
                excess -= size
        for i in range(len(fresh) - 1):
            if excess <= 0:
                break
            if offsets[i] >= head:
                skipped.add(i)
                excess -= len(fresh[i].data)
    settled = fresh[-1].seq
    if hold and (skipped or doomed):
        settled = max((fresh[i].seq for i in skipped), default=task.last_seq)
        if not skipped:
            doomed, doomed_bytes = [], 0  # nothing new falls out yet: keep the stored tail
    rows: list[TaskOutputChunk] = []
    held: list[OutputChunk] = []
    for i, chunk in enumerate(fresh):
        if chunk.seq > settled:
            held.append(chunk if chunk.held else dataclasses.replace(chunk, held=True))
            continue
        size = len(chunk.data)
        task.output_bytes += size
        if i in skipped:
            task.dropped_bytes += size
            continue
        task.stored_bytes += size
        rows.append(
            TaskOutputChunk(
                task=task,
                seq=chunk.seq,
                stream=chunk.stream,
                data=chunk.data,
                offset=offsets[i],
                size=size,
            )
        )
    task.stored_bytes -= doomed_bytes
    task.dropped_bytes += doomed_bytes
    task.last_seq = max(task.last_seq, settled)
    return rows, held, doomed
