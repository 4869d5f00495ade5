"""Task output intake: each (task, seq) stored once, capped per task keeping head and tail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cortex.errors import ValidationFailed
from mesh import events
from mesh.models import OutputStreamName, Task, TaskOutputChunk, TaskStatus
from mesh.services.journal import _node_task
from mesh.services.secret_mask import MASK, known_secrets, mask_secrets

#: Bytes sent to live watchers per chunk; the full chunk is always stored (up to the cap).
LIVE_FRAME_LIMIT = 64 * 1024


def output_append(*, node_id: str, task_id: str, seq: int, stream: str, data: bytes) -> int:
    """Store one output chunk unless its seq is already stored; returns the acked seq.

    Raises NotFound (`task_not_found`) for a task that is not this node's, with nothing stored.
    """
    if seq < 1:
        raise ValidationFailed("Output seq starts at 1.", code="invalid_seq")
    if stream not in OutputStreamName.values:
        raise ValidationFailed("Unknown output stream.", code="invalid_stream")
    data = mask_secrets(data)  # the hub's own secrets never reach storage, watchers or models
    cap = int(settings.MESH_OUTPUT_CAP_BYTES)
    now = timezone.now()
    with transaction.atomic():
        task = _node_task(node_id=node_id, task_id=task_id, lock=True)
        if seq <= task.last_seq:
            return task.last_seq  # a resend after reconnect: stored already (or dropped by cap)
        size = len(data)
        TaskOutputChunk.objects.create(
            task=task, seq=seq, stream=stream, data=data, offset=task.output_bytes, size=size
        )
        task.last_seq = seq
        task.output_bytes += size
        task.stored_bytes += size
        fields = ["last_seq", "output_bytes", "stored_bytes", "updated_at"]
        if task.stored_bytes > cap:
            task.dropped_bytes += _trim(task=task, cap=cap, keep_seq=seq)
            fields.append("dropped_bytes")
        if task.status == TaskStatus.DISPATCHED:
            task.status = TaskStatus.RUNNING
            task.started_at = task.started_at or now
            fields += ["status", "started_at"]
        task.save(update_fields=fields)
        events.console_frame(
            node_id,
            events.TASK_OUTPUT,
            seq=seq,
            task_id=str(task.pk),
            stream=stream,
            data=data[:LIVE_FRAME_LIMIT].decode("utf-8", "replace"),
            truncated=size > LIVE_FRAME_LIMIT,
        )
    return seq


def _trim(*, task: Task, cap: int, keep_seq: int) -> int:
    """Delete the oldest chunks after the head until the task fits; returns bytes dropped."""
    head = cap // 2
    dropped = 0
    rows = (
        TaskOutputChunk.objects.filter(task=task, offset__gte=head)
        .exclude(seq=keep_seq)
        .order_by("seq")
        .values_list("pk", "size")
    )
    doomed: list[int] = []
    for pk, size in rows:
        if task.stored_bytes - dropped <= cap:
            break
        doomed.append(pk)
        dropped += size
    if doomed:
        TaskOutputChunk.objects.filter(pk__in=doomed).delete()
    task.stored_bytes -= dropped
    return dropped


@dataclass(frozen=True)
class OutputChunk:
    """One TaskOutput as received, waiting for a batched store."""

    task_id: str
    seq: int
    stream: str
    data: bytes


def output_append_many(*, node_id: str, chunks: list[OutputChunk]) -> dict[str, int]:
    """Store a batch of chunks in one transaction; returns the acked seq of each task.

    Same rules as `output_append` per chunk; a chunk for a task that is not this node's
    refuses the whole batch (NotFound `task_not_found`) with nothing stored.
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
    acked: dict[str, int] = {}
    frames: list[dict[str, Any]] = []
    with transaction.atomic():
        # Lock in a fixed order so two batches touching the same tasks cannot deadlock.
        tasks = {
            task_id: _node_task(node_id=node_id, task_id=task_id, lock=True)
            for task_id in sorted(by_task)
        }
        rows: list[TaskOutputChunk] = []
        for task_id, pending in by_task.items():
            task = tasks[task_id]
            fresh: list[TaskOutputChunk] = []
            for chunk in pending:
                if chunk.seq <= task.last_seq:
                    continue  # a resend after reconnect (or twice in this batch)
                data = chunk.data
                for secret in secrets:  # as mask_secrets does
                    if secret in data:
                        data = data.replace(secret, MASK)
                size = len(data)
                fresh.append(
                    TaskOutputChunk(
                        task=task,
                        seq=chunk.seq,
                        stream=chunk.stream,
                        data=data,
                        offset=task.output_bytes,
                        size=size,
                    )
                )
                task.last_seq = chunk.seq
                task.output_bytes += size
                task.stored_bytes += size
                frames.append(
                    {
                        "type": events.TASK_OUTPUT,
                        "seq": chunk.seq,
                        "task_id": str(task.pk),
                        "stream": chunk.stream,
                        "data": data[:LIVE_FRAME_LIMIT].decode("utf-8", "replace"),
                        "truncated": size > LIVE_FRAME_LIMIT,
                    }
                )
            acked[task_id] = task.last_seq
            if not fresh:
                continue
            fields = ["last_seq", "output_bytes", "stored_bytes", "updated_at"]
            if task.stored_bytes > cap:
                fresh = _trim_batch(task=task, cap=cap, fresh=fresh)
                fields.append("dropped_bytes")
            if task.status == TaskStatus.DISPATCHED:
                task.status = TaskStatus.RUNNING
                task.started_at = task.started_at or now
                fields += ["status", "started_at"]
            task.save(update_fields=fields)
            rows.extend(fresh)
        TaskOutputChunk.objects.bulk_create(rows)
        if frames:
            group = events.group_name(events.NODE_CONSOLE_GROUP, node_id=node_id)
            transaction.on_commit(lambda: async_to_sync(_send_in_order)(group, frames))
    return acked


async def _send_in_order(group: str, frames: list[dict[str, Any]]) -> None:
    """One hop for a batch's live frames, sent one after another so seqs arrive in order."""
    for frame in frames:
        await events.asend(group, frame)


def _trim_batch(*, task: Task, cap: int, fresh: list[TaskOutputChunk]) -> list[TaskOutputChunk]:
    """Cap a task about to store `fresh`: drop the oldest chunks after the head, stored or new.

    New chunks that would be dropped at once are never written; the newest chunk is always
    kept. Returns the new chunks to write.
    """
    head = cap // 2
    stored = (
        TaskOutputChunk.objects.filter(task=task, offset__gte=head)
        .order_by("seq")
        .values_list("pk", "size")
    )
    # Oldest first: stored rows (pk, size), then the new chunks (0, index) but the newest.
    candidates = [(pk, size) for pk, size in stored]
    candidates += [(0, i) for i, c in enumerate(fresh[:-1]) if c.offset >= head]
    dropped = 0
    doomed: list[int] = []
    skipped: set[int] = set()
    for pk, size_or_index in candidates:
        if task.stored_bytes - dropped <= cap:
            break
        if pk:
            doomed.append(pk)
            dropped += size_or_index
        else:
            skipped.add(size_or_index)
            dropped += fresh[size_or_index].size
    if doomed:
        TaskOutputChunk.objects.filter(pk__in=doomed).delete()
    task.stored_bytes -= dropped
    task.dropped_bytes += dropped
    return [c for i, c in enumerate(fresh) if i not in skipped]
