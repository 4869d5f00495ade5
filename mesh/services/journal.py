"""The node's side of the task journal: started, result, delivery claims, deadlines, loss."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from cortex import metrics
from cortex.errors import NotFound, ValidationFailed
from mesh import events, store
from mesh.models import ACTIVE_STATUSES, Task, TaskStatus, max_concurrent_tasks
from mesh.services.browser import browser_result_store
from mesh.services.push_blobs import push_blob_release
from mesh.services.secret_mask import mask_value
from mesh.services.task_hooks import task_end_notify

logger = logging.getLogger("cortex.mesh")

OUTCOMES = {
    "SUCCEEDED": TaskStatus.SUCCEEDED,
    "FAILED": TaskStatus.FAILED,
    "CANCELLED": TaskStatus.CANCELLED,
    "TIMED_OUT": TaskStatus.TIMED_OUT,
    "REJECTED": TaskStatus.FAILED,
}


def _announce_finished(task: Task) -> None:
    _announce_end(
        node_id=task.node.node_id,
        task_id=str(task.pk),
        status=task.status,
        exit_code=task.exit_code,
        error_code=task.error_code,
        kind=task.kind,
        payload=task.payload,
    )


def _announce_end(
    *,
    node_id: str,
    task_id: str,
    status: str,
    exit_code: int | None,
    error_code: str,
    kind: str,
    payload: Any,
) -> None:
    """Every terminal transition passes here: watchers, waiters, the staged blob."""
    events.console_frame(
        node_id,
        events.TASK_FINISHED,
        task_id=task_id,
        status=status,
        exit_code=exit_code,
        error_code=error_code,
    )
    events.task_changed(task_id, status)
    push_blob_release(kind=kind, payload=payload)
    task_end_notify(task_id=task_id, kind=kind, payload=payload, status=status)


def _task_key(task_id: str) -> Any:
    """The task id as the database stores it; NotFound when it is no UUID."""
    try:
        return store.task_key(uuid.UUID(task_id))
    except (ValueError, TypeError, AttributeError) as exc:
        raise NotFound("No such task for this node.", code="task_not_found") from exc


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
    key = _task_key(task_id)
    now = timezone.now()
    changed = store.task_mark_started(key=key, node_id=node_id, now=now)
    if changed is None:
        _node_task(node_id=node_id, task_id=task_id)  # NotFound for another node's task
        return False
    kind, created_at = changed
    metrics.observe_seconds(
        metrics.TASK_DISPATCH_TO_START, (now - created_at).total_seconds(), kind=str(kind)
    )
    events.console_frame(node_id, events.TASK_STARTED, task_id=task_id)
    events.task_changed(task_id, TaskStatus.RUNNING)
    return True


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
    # A screenshot is kept apart from masking (base64 is no text) and stored once the task is
    # known to be this node's (`browser_result_store`).
    png = None
    if isinstance(result, dict) and "png_base64" in result:
        result = dict(result)
        png = result.pop("png_base64")
    error_message, result = mask_value(error_message), mask_value(result)  # see secret_mask
    key = _task_key(task_id)
    finished_at = timezone.now()
    error_code, error_message = error_code[:64], error_message[:4000]
    with transaction.atomic():
        # One statement settles the task (the ORM took a locked SELECT and an UPDATE).
        done = store.task_mark_finished(
            key=key,
            node_id=node_id,
            status=status,
            exit_code=exit_code,
            error_code=error_code,
            error_message=error_message,
            result=result,
            now=finished_at,
        )
        if done is None:  # queued, ended already (a duplicate), or not this node's (NotFound)
            _node_task(node_id=node_id, task_id=task_id)
            return False
        stored_seq, kind, payload, started_at = done
        metrics.observe_seconds(
            metrics.TASK_RUN,
            (finished_at - started_at).total_seconds() if started_at else None,
            kind=str(kind),
            status=str(status),
        )
        if png is not None and kind == "browser" and isinstance(result, dict):
            shot = browser_result_store(task_id=task_id, result={"png_base64": png})
            Task.objects.filter(pk=task_id).update(result={**result, **shot})
        if last_seq > stored_seq:
            error_message = f"{error_message} [output after seq {stored_seq} missing]"[:4000]
            Task.objects.filter(pk=task_id).update(error_message=error_message)
        _announce_end(
            node_id=node_id,
            task_id=task_id,
            status=status,
            exit_code=exit_code,
            error_code=error_code,
            kind=kind,
            payload=payload,
        )
    return True


@dataclass(frozen=True)
class Claim:
    """Tasks moved to `dispatched` for a stream; `more` when the node's free slots, not the
    queue, limited them (so a slot freed by a result is worth another claim)."""

    tasks: list[Task] = field(default_factory=list)
    more: bool = False


def tasks_claim_for_delivery(*, node_id: str, connection_id: str) -> Claim | None:
    """Move queued tasks to `dispatched` up to the node's concurrency cap, oldest first.

    Returns None when `connection_id` no longer holds the node's stream (the caller hangs up).
    The claim is one conditional UPDATE, so two processes never send the same task.
    """
    node = store.node_slots(node_id=node_id)
    if node is None or not node.is_active or node.connection_id != connection_id:
        return None
    slots = max_concurrent_tasks(node.skill_config) - node.busy
    if slots <= 0:
        return Claim(more=True)
    tasks = store.tasks_claim(
        node_pk=node.pk, connection_id=connection_id, slots=slots, now=timezone.now()
    )
    for task in tasks:
        events.task_changed(task.pk, TaskStatus.DISPATCHED)
    return Claim(tasks=tasks, more=len(tasks) >= slots)


def nodes_with_queued_tasks(*, node_ids: list[str]) -> set[str]:
    """Which of these nodes have queued tasks: the heartbeat's check for a lost doorbell.

    One query per 500 nodes each flush, instead of a claim on every heartbeat.
    """
    return store.nodes_with_queued_tasks(node_ids=node_ids)


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
        if dispatched_at is None or dispatched_at + timedelta(seconds=timeout + margin) > now:
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


NOT_DELIVERED = "not_delivered"
NOT_DELIVERED_MESSAGE = (
    "The node did not take the task before its delivery deadline (it was offline or busy); "
    "the task was never delivered and will not run."
)
#: Expired tasks ended per sweep (the next sweep takes the rest).
EXPIRE_BATCH = 500


def task_expire_undelivered(*, task_id: Any) -> bool:
    """End one queued task past its delivery deadline as `timed_out` / `not_delivered`.

    A conditional UPDATE: whichever of the claim and this statement comes first wins, so the
    task is either delivered or ended, never both, across any number of processes.
    """
    now = timezone.now()
    with transaction.atomic():
        done = Task.objects.filter(
            pk=task_id, status=TaskStatus.QUEUED, deliver_by__lte=now
        ).update(
            status=TaskStatus.TIMED_OUT,
            error_code=NOT_DELIVERED,
            error_message=NOT_DELIVERED_MESSAGE,
            finished_at=now,
            updated_at=now,
        )
        if done:
            _announce_finished(Task.objects.select_related("node").get(pk=task_id))
    return bool(done)


def tasks_expire_undelivered() -> int:
    """End the queued tasks whose delivery deadline passed (every runmesh sweeps; idempotent)."""
    expired = list(
        Task.objects.filter(status=TaskStatus.QUEUED, deliver_by__lte=timezone.now())
        .order_by("deliver_by")
        .values_list("pk", flat=True)[:EXPIRE_BATCH]
    )
    count = sum(task_expire_undelivered(task_id=pk) for pk in expired)
    if count:
        logger.info("%s queued task(s) ended not_delivered", count)
    return count


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
