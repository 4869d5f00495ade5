"""mesh/services/journal.py sweeps: deadlines, undelivered tasks, tasks a node lost. Each ends
only active tasks, once, with a stable error code."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from mesh.models import Task, TaskStatus
from mesh.services.journal import tasks_enforce_deadlines, tasks_expire_undelivered, tasks_mark_lost

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(make_node):  # type: ignore[no-untyped-def]
    return make_node("j1")[0]


def _task(node, **fields) -> Task:  # type: ignore[no-untyped-def]
    fields.setdefault("deliver_by", timezone.now() + timedelta(minutes=5))
    return Task.objects.create(node=node, kind="shell", payload={"command": "true"}, **fields)


def test_tasks_enforce_deadlines_times_out_only_overdue_running_tasks(node) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    overdue = _task(
        node, status=TaskStatus.RUNNING, timeout=10, dispatched_at=now - timedelta(seconds=30)
    )
    in_margin = _task(
        node, status=TaskStatus.RUNNING, timeout=10, dispatched_at=now - timedelta(seconds=12)
    )
    queued = _task(node, status=TaskStatus.QUEUED, timeout=10)
    done = _task(
        node, status=TaskStatus.SUCCEEDED, timeout=1, dispatched_at=now - timedelta(hours=1)
    )

    assert tasks_enforce_deadlines(margin=5) == [("j1", str(overdue.pk))]
    overdue.refresh_from_db()
    assert overdue.status == TaskStatus.TIMED_OUT
    assert overdue.error_code == "hub_deadline"
    assert overdue.cancel_reason == "deadline" and overdue.finished_at is not None
    for other, status in (
        (in_margin, TaskStatus.RUNNING),
        (queued, TaskStatus.QUEUED),
        (done, TaskStatus.SUCCEEDED),
    ):
        other.refresh_from_db()
        assert other.status == status
    assert tasks_enforce_deadlines(margin=5) == []


def test_tasks_expire_undelivered_ends_queued_tasks_past_their_deadline(node) -> None:  # type: ignore[no-untyped-def]
    past = timezone.now() - timedelta(seconds=1)
    late = _task(node, deliver_by=past)
    on_time = _task(node)
    running = _task(node, status=TaskStatus.RUNNING, deliver_by=past)

    assert tasks_expire_undelivered() == 1
    late.refresh_from_db()
    assert (late.status, late.error_code) == (TaskStatus.TIMED_OUT, "not_delivered")
    on_time.refresh_from_db()
    running.refresh_from_db()
    assert on_time.status == TaskStatus.QUEUED and running.status == TaskStatus.RUNNING
    assert tasks_expire_undelivered() == 0


def test_tasks_mark_lost_ends_only_active_tasks(node) -> None:  # type: ignore[no-untyped-def]
    running = _task(node, status=TaskStatus.RUNNING)
    finished = _task(node, status=TaskStatus.FAILED, error_code="exit_1")
    count = tasks_mark_lost(
        node_id="j1", task_ids=[running.pk, finished.pk], reason="node_lost_task"
    )
    assert count == 1
    running.refresh_from_db()
    finished.refresh_from_db()
    assert (running.status, running.error_code) == (TaskStatus.LOST, "node_lost_task")
    assert running.finished_at is not None
    assert (finished.status, finished.error_code) == (TaskStatus.FAILED, "exit_1")
    assert tasks_mark_lost(node_id="j1", task_ids=[running.pk], reason="again") == 0
