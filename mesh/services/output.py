"""Task output intake: each (task, seq) stored once, capped per task keeping head and tail."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cortex.errors import ValidationFailed
from mesh import events
from mesh.models import OutputStreamName, Task, TaskOutputChunk, TaskStatus
from mesh.services.journal import _node_task
from mesh.services.secret_mask import mask_secrets

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
