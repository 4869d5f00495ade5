"""The node's side of the task journal: started, result, delivery claims, deadlines, loss."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from cortex.errors import NotFound, ValidationFailed
from mesh import events
from mesh.models import ACTIVE_STATUSES, Node, Task, TaskStatus
from mesh.services.push_blobs import push_blob_release
from mesh.services.secret_mask import mask_value

logger = logging.getLogger("cortex.mesh")

OUTCOMES = {
    "SUCCEEDED": TaskStatus.SUCCEEDED,
    "FAILED": TaskStatus.FAILED,
    "CANCELLED": TaskStatus.CANCELLED,
    "TIMED_OUT": TaskStatus.TIMED_OUT,
    "REJECTED": TaskStatus.FAILED,
}


def _announce_finished(task: Task) -> None:
    events.console_frame(
        task.node.node_id,
        events.TASK_FINISHED,
        task_id=str(task.pk),
        status=task.status,
        exit_code=task.exit_code,
        error_code=task.error_code,
    )
    events.task_changed(task.pk, task.status)
    push_blob_release(task)  # every terminal transition passes here


def _node_task(*, node_id: str, task_id: str, lock: bool = False) -> Task:
    """The task if it belongs to `node_id`; NotFound for anything else (another node's task)."""
    try:
        key = uuid.UUID(task_id)
    except (ValueError, TypeError) as exc:
        raise NotFound("No such task for this node.", code="task_not_found") from exc
    qs = Task.objects.select_related("node").filter(pk=key, node__node_id=node_id)
    if lock:
        qs = qs.select_for_update(of=("self",))
    task = qs.first()
    if task is None:
        raise NotFound("No such task for this node.", code="task_not_found")
    return task


def task_started(*, node_id: str, task_id: str) -> bool:
    """The node began running the task; returns whether the state changed."""
    task = _node_task(node_id=node_id, task_id=task_id)
    now = timezone.now()
    with transaction.atomic():
        changed = Task.objects.filter(pk=task.pk, status=TaskStatus.DISPATCHED).update(
            status=TaskStatus.RUNNING, started_at=now, updated_at=now
        )
        if changed:
            events.console_frame(node_id, events.TASK_STARTED, task_id=str(task.pk))
            events.task_changed(task.pk, TaskStatus.RUNNING)
    return bool(changed)


def task_finish(
    *,
    node_id: str,
    task_id: str,
    outcome: str,
    exit_code: int | None = None,
    error_code: str = "",
    error_message: str = "",
    last_seq: int = 0,
    result: Any = None,
) -> bool:
    """Record the node's result once; a duplicate (or a result after the hub gave up) is ignored."""
    status = OUTCOMES.get(outcome)
    if status is None:
        raise ValidationFailed("Unknown task outcome.", code="invalid_outcome")
    if outcome == "REJECTED" and not error_code:
        error_code = "rejected"
    error_message, result = mask_value(error_message), mask_value(result)  # see secret_mask
    now = timezone.now()
    with transaction.atomic():
        task = _node_task(node_id=node_id, task_id=task_id, lock=True)
        if task.is_terminal or task.status == TaskStatus.QUEUED:
            return False
        if last_seq > task.last_seq:
            error_message = (error_message + f" [output after seq {task.last_seq} missing]")[:4000]
        task.status = status
        task.exit_code = exit_code
        task.error_code = error_code[:64]
        task.error_message = error_message[:4000]
        task.result = result
        task.finished_at = now
        task.started_at = task.started_at or now
        task.save(
            update_fields=[
                "status",
                "exit_code",
                "error_code",
                "error_message",
                "result",
                "finished_at",
                "started_at",
                "updated_at",
            ]
        )
        _announce_finished(task)
    return True


def tasks_claim_for_delivery(*, node_id: str, connection_id: str) -> list[Task] | None:
    """Move queued tasks to `dispatched` up to the node's concurrency cap, oldest first.

    Returns None when `connection_id` no longer holds the node's stream (the caller hangs up).
    Each task is claimed with a conditional UPDATE, so two processes never send the same task.
    """
    node = Node.objects.filter(node_id=node_id).first()
    if node is None or not node.is_active or node.connection_id != connection_id:
        return None
    busy = Task.objects.filter(node=node, status__in=ACTIVE_STATUSES).count()
    slots = node.max_concurrent_tasks - busy
    claimed: list[Task] = []
    if slots <= 0:
        return claimed
    now = timezone.now()
    candidates = list(
        Task.objects.filter(node=node, status=TaskStatus.QUEUED).order_by("created_at")[:slots]
    )
    for task in candidates:
        with transaction.atomic():
            won = Task.objects.filter(pk=task.pk, status=TaskStatus.QUEUED).update(
                status=TaskStatus.DISPATCHED, dispatched_at=now, updated_at=now
            )
            if won:
                task.status = TaskStatus.DISPATCHED
                task.dispatched_at = now
                task.node = node
                claimed.append(task)
                events.task_changed(task.pk, TaskStatus.DISPATCHED)
    return claimed


def nodes_with_queued_tasks(*, node_ids: list[str]) -> set[str]:
    """Which of these nodes have queued tasks: the heartbeat's check for a lost doorbell.

    One query per 500 nodes each flush, instead of a claim on every heartbeat.
    """
    found: set[str] = set()
    for start in range(0, len(node_ids), 500):
        found.update(
            Task.objects.filter(
                status=TaskStatus.QUEUED, node__node_id__in=node_ids[start : start + 500]
            )
            .values_list("node__node_id", flat=True)
            .distinct()
        )
    return found


def tasks_pending_cancel(*, node_id: str) -> list[tuple[str, str]]:
    """(task id, reason) of the node's active tasks whose cancellation was asked for."""
    return [
        (str(pk), reason or "cancelled")
        for pk, reason in Task.objects.filter(
            node__node_id=node_id, status__in=ACTIVE_STATUSES, cancel_requested_at__isnull=False
        ).values_list("pk", "cancel_reason")
    ]


def tasks_enforce_deadlines(*, margin: float) -> list[tuple[str, str]]:
    """Mark tasks running past timeout + margin `timed_out`; returns (node_id, task_id) pairs."""
    now = timezone.now()
    expired: list[tuple[str, str]] = []
    rows = Task.objects.filter(status__in=ACTIVE_STATUSES, dispatched_at__isnull=False).values_list(
        "pk", "node__node_id", "timeout", "dispatched_at"
    )
    for pk, node_id, timeout, dispatched_at in rows:
        if dispatched_at + timedelta(seconds=timeout + margin) > now:
            continue
        with transaction.atomic():
            done = Task.objects.filter(pk=pk, status__in=ACTIVE_STATUSES).update(
                status=TaskStatus.TIMED_OUT,
                error_code="hub_deadline",
                error_message="The node did not report a result before the deadline.",
                finished_at=now,
                cancel_requested_at=now,
                cancel_reason="deadline",
                updated_at=now,
            )
            if done:
                task = Task.objects.select_related("node").get(pk=pk)
                _announce_finished(task)
                expired.append((node_id, str(pk)))
    return expired


def tasks_mark_lost(*, node_id: str, task_ids: list[Any], reason: str) -> int:
    """End the given active tasks as `lost`; nothing is re-run by itself."""
    now = timezone.now()
    count = 0
    for pk in task_ids:
        with transaction.atomic():
            done = Task.objects.filter(pk=pk, status__in=ACTIVE_STATUSES).update(
                status=TaskStatus.LOST,
                error_code=reason,
                error_message="The node did not come back with this task.",
                finished_at=now,
                updated_at=now,
            )
            if done:
                count += 1
                task = Task.objects.select_related("node").get(pk=pk)
                _announce_finished(task)
    if count:
        logger.info("marked %s task(s) of node %s lost (%s)", count, node_id, reason)
    return count
