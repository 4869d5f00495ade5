"""Task output intake: each (task, seq) stored once, capped per task keeping head and tail.

A task keeps its first `cap // 2` bytes (the head) and as many of its newest chunks as fit the
cap (the tail); `dropped_bytes` counts the rest exactly. Past the cap a flood would be written
only to be deleted moments later, so the batched intake can *hold* the newest chunks that fit
the tail (`output_store_batch(hold=True)`): they are neither stored nor acked (the node keeps
them until acked and resends them after a reconnect), and a batch commits and acks only what
falls out of the tail. The caller passes held chunks back first in its next batch and stores
them with `hold=False` when the output pauses, before a result and at the end of the stream.

Watchers get one coalesced `task.output` frame per run of one stream per task per batch:
`first_seq`..`seq` are the chunks it covers, `data` their newest bytes (at most
LIVE_FRAME_LIMIT per task per batch, so a flood cannot drown a watcher: the newest output is
what a terminal shows), `skipped` the bytes of those chunks left out at the front and
`truncated` whether any were. The full output stays available over REST.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.db.models.functions import Length
from django.utils import timezone

from cortex.errors import ValidationFailed
from mesh import events
from mesh.models import OutputStreamName, Task, TaskOutputChunk, TaskStatus
from mesh.services.journal import _node_task
from mesh.services.secret_mask import MASK, known_secrets

#: Most output bytes live frames carry per task per batch (the newest ones).
LIVE_FRAME_LIMIT = 64 * 1024
#: Most live frames per task per batch (one per run of one stream); older runs fold into them.
LIVE_FRAMES_PER_BATCH = 8


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
    *, node_id: str, chunks: list[OutputChunk], hold: bool, announce: bool = True
) -> StoredBatch:
    """Store (or with `hold`, drop or hold) a batch in one transaction; live frames after commit.

    Chunks of a task come in seq order, held ones first; a seq already settled is ignored (a
    resend after a reconnect, or twice in one batch). A chunk for a task that is not this
    node's refuses the whole batch (NotFound `task_not_found`) with nothing stored. With
    `announce=False` the frames are returned instead, for a caller outside any transaction to
    send (`output_announce`) without holding up the database thread.
    """
    for chunk in chunks:
        if chunk.seq < 1:
            raise ValidationFailed("Output seq starts at 1.", code="invalid_seq")
        if chunk.stream not in OutputStreamName.values:
            raise ValidationFailed("Unknown output stream.", code="invalid_stream")
    by_task: dict[str, list[OutputChunk]] = {}
    for chunk in chunks:
        by_task.setdefault(chunk.task_id, []).append(chunk)
    cap = int(settings.MESH_OUTPUT_CAP_BYTES)
    now = timezone.now()
    secrets = known_secrets()  # looked up once per batch; each chunk is masked on its own
    result = StoredBatch(group=events.group_name(events.NODE_CONSOLE_GROUP, node_id=node_id))
    frames = result.frames
    rows: list[TaskOutputChunk] = []
    doomed: list[int] = []
    with transaction.atomic():
        # Lock in a fixed order so two batches touching the same tasks cannot deadlock.
        tasks = {
            task_id: _node_task(node_id=node_id, task_id=task_id, lock=True)
            for task_id in sorted(by_task)
        }
        for task_id, pending in by_task.items():
            task = tasks[task_id]
            fresh = _fresh(task=task, pending=pending, secrets=secrets)
            if fresh:
                news = [(c.seq, c.stream, c.data) for c in fresh if not c.held]
                frames += live_frames(str(task.pk), news)
                settled_seq = task.last_seq
                written, held, gone = _settle(task=task, fresh=fresh, cap=cap, hold=hold)
                rows += written
                doomed += gone
                result.held += held
                fields = ["last_seq", "output_bytes", "stored_bytes", "dropped_bytes"]
                if task.status == TaskStatus.DISPATCHED:
                    task.status = TaskStatus.RUNNING
                    task.started_at = task.started_at or now
                    fields += ["status", "started_at"]
                elif task.last_seq == settled_seq:
                    fields = []  # all held: nothing of this task changes yet
                if fields:
                    task.save(update_fields=[*fields, "updated_at"])
            result.acked[task_id] = task.last_seq
        if doomed:
            TaskOutputChunk.objects.filter(pk__in=doomed).delete()
        if rows:
            TaskOutputChunk.objects.bulk_create(rows)
        if frames and announce:
            transaction.on_commit(lambda: async_to_sync(output_announce)(result))
    return result


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
        # Every chunk before offset `head` is stored, so stored rows in seq order are the head
        # while their running total is below it. LENGTH(data) is read from the row's header;
        # `offset` and `size` come after the blob, and SQLite would read the whole blob to get
        # them.
        stored = (
            TaskOutputChunk.objects.filter(task=task)
            .order_by("seq")
            .values_list("pk", Length("data"))
        )
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


def live_frames(task_id: str, chunks: Sequence[tuple[int, str, bytes]]) -> list[dict[str, Any]]:
    """Coalesce (seq, stream, data) chunks of one task into `task.output` frames, oldest first.

    One frame per run of one stream, carrying the newest bytes: LIVE_FRAME_LIMIT in all, given
    to the newest runs first; a run left without room (or past LIVE_FRAMES_PER_BATCH) folds
    into the next frame as skipped bytes, so every seq is covered by exactly one frame.
    """
    runs: list[tuple[int, int, str, list[bytes]]] = []
    for seq, stream, data in chunks:
        if runs and runs[-1][2] == stream:
            first, _, _, parts = runs[-1]
            parts.append(data)
            runs[-1] = (first, seq, stream, parts)
        else:
            runs.append((seq, seq, stream, [data]))
    budget = LIVE_FRAME_LIMIT
    frames: list[dict[str, Any]] = []
    for first, last, stream, parts in reversed(runs):
        size = sum(len(p) for p in parts)
        if frames and (budget <= 0 or len(frames) == LIVE_FRAMES_PER_BATCH):
            frames[-1].update(first_seq=first, truncated=True)
            frames[-1]["skipped"] += size
            continue
        data = _newest(parts, budget)
        budget -= len(data)
        frames.append(
            {
                "type": events.TASK_OUTPUT,
                "seq": last,
                "first_seq": first,
                "task_id": task_id,
                "stream": stream,
                "data": data.decode("utf-8", "replace"),
                "truncated": len(data) < size,
                "skipped": size - len(data),
            }
        )
    frames.reverse()
    return frames


def _newest(parts: list[bytes], limit: int) -> bytes:
    """The last `limit` bytes of the joined parts (joining only what is needed), starting on a
    UTF-8 character boundary when cut."""
    taken: list[bytes] = []
    size = 0
    for part in reversed(parts):
        taken.append(part)
        size += len(part)
        if size >= limit:
            break
    data = b"".join(reversed(taken))
    if len(data) <= limit:
        return data
    data = data[len(data) - limit :]
    start = 0
    while start < 3 and start < len(data) and 0x80 <= data[start] < 0xC0:
        start += 1  # a continuation byte: the character began in the skipped part
    return data[start:]


async def output_announce(batch: StoredBatch, after: Awaitable[Any] | None = None) -> None:
    """Send a committed batch's live frames one after another (after the previous batch's, if
    given), so seqs arrive in order."""
    if after is not None:
        await after
    for frame in batch.frames:
        await events.asend(batch.group, frame)
