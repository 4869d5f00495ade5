"""mesh/services/tasks.py waits: `task_wait` (a thread) and `task_wait_async` (the loop) return
once the task is over, end a queued task past its delivery deadline, and give up at `timeout`."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from mesh.models import Task, TaskStatus
from mesh.services.journal import tasks_mark_lost
from mesh.services.tasks import task_cancel, task_wait, task_wait_async


@pytest.fixture
def node(make_node):  # type: ignore[no-untyped-def]
    return make_node("w1")[0]


def _task(node, **fields) -> Task:  # type: ignore[no-untyped-def]
    fields.setdefault("deliver_by", timezone.now() + timedelta(minutes=5))
    return Task.objects.create(node=node, kind="shell", payload={"command": "true"}, **fields)


@pytest.mark.django_db
def test_task_wait_returns_a_terminal_task_as_loaded(node) -> None:  # type: ignore[no-untyped-def]
    task = _task(node, status=TaskStatus.SUCCEEDED)
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.FAILED)
    assert task_wait(task=task, timeout=30) is task
    assert task.status == TaskStatus.SUCCEEDED


@pytest.mark.django_db
def test_task_wait_without_time_reads_the_state_and_settles_a_late_delivery(node) -> None:  # type: ignore[no-untyped-def]
    queued = _task(node)
    assert task_wait(task=queued, timeout=0).status == TaskStatus.QUEUED
    late = _task(node, deliver_by=timezone.now() - timedelta(seconds=1))
    ended = task_wait(task=late, timeout=0)
    assert (ended.status, ended.error_code) == (TaskStatus.TIMED_OUT, "not_delivered")


@pytest.mark.django_db(transaction=True)
def test_task_wait_returns_the_state_another_thread_ended(node, user, grant) -> None:  # type: ignore[no-untyped-def]
    grant(user, node)
    task = _task(node, requested_by=user)
    ender = threading.Thread(target=task_cancel, kwargs={"actor": user, "task": task})
    ender.start()
    try:
        waited = task_wait(task=task, timeout=60)
    finally:
        ender.join(timeout=60)
    assert waited.status == TaskStatus.CANCELLED
    assert waited is not task


@pytest.mark.django_db
def test_task_wait_gives_up_at_the_timeout_with_the_latest_state(node) -> None:  # type: ignore[no-untyped-def]
    task = _task(node, status=TaskStatus.RUNNING)
    waited = task_wait(task=task, timeout=0.2)
    assert waited.status == TaskStatus.RUNNING


@pytest.mark.django_db(transaction=True)
async def test_task_wait_async_returns_once_the_task_ends(node) -> None:  # type: ignore[no-untyped-def]
    task = await sync_to_async(_task)(node, status=TaskStatus.RUNNING)
    waiter = asyncio.create_task(task_wait_async(task_id=task.pk, timeout=60))
    await sync_to_async(tasks_mark_lost)(node_id="w1", task_ids=[task.pk], reason="node_lost_task")
    await asyncio.wait_for(waiter, timeout=60)
    task = await Task.objects.aget(pk=task.pk)
    assert task.status == TaskStatus.LOST


@pytest.mark.django_db(transaction=True)
async def test_task_wait_async_settles_a_late_delivery_and_knows_no_ghosts(node) -> None:  # type: ignore[no-untyped-def]
    late = await sync_to_async(_task)(node, deliver_by=timezone.now() - timedelta(seconds=1))
    await task_wait_async(task_id=late.pk, timeout=60)
    late = await Task.objects.aget(pk=late.pk)
    assert (late.status, late.error_code) == (TaskStatus.TIMED_OUT, "not_delivered")
    await task_wait_async(task_id=uuid.uuid4(), timeout=60)  # an unknown task is over at once


@pytest.mark.django_db(transaction=True)
async def test_task_wait_async_gives_up_at_the_timeout(node) -> None:  # type: ignore[no-untyped-def]
    task = await sync_to_async(_task)(node, status=TaskStatus.RUNNING)
    await task_wait_async(task_id=task.pk, timeout=0.2)
    assert (await Task.objects.aget(pk=task.pk)).status == TaskStatus.RUNNING
