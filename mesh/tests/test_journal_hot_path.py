"""The journal's one-statement steps: claim up to the node's free slots, start, finish."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from cortex.errors import NotFound
from cortex.patches.asgiref_loops import adopt_running_loop
from mesh import events, services
from mesh.models import Task, TaskStatus

pytestmark = pytest.mark.django_db(transaction=True)

CONN = "conn-1"


@pytest.fixture
def node(make_node):  # type: ignore[no-untyped-def]
    node, _ = make_node("n1", skill_config={"max_concurrent_tasks": 2})
    services.node_hello(node_id="n1", connection_id=CONN)
    return node


def _queue(actor: Any, node: Any, n: int) -> list[Task]:
    return [
        services.task_dispatch(
            actor=actor, node=node, kind="shell", payload={"command": f"echo {i}"}, timeout=7.5
        )
        for i in range(n)
    ]


def test_claim_fills_free_slots_oldest_first_and_says_when_more_may_wait(node, staff_user):
    queued = _queue(staff_user, node, 3)
    first = services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    assert first is not None
    assert [t.pk for t in first.tasks] == [queued[0].pk, queued[1].pk]
    assert first.more  # both slots taken: a freed slot is worth another claim
    claimed = first.tasks[0]
    assert (claimed.kind, claimed.payload, claimed.timeout) == ("shell", {"command": "echo 0"}, 7.5)
    assert Task.objects.get(pk=claimed.pk).status == TaskStatus.DISPATCHED

    full = services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    assert full is not None and (full.tasks, full.more) == ([], True)

    services.task_finish(node_id="n1", task_id=str(queued[0].pk), outcome="SUCCEEDED")
    last = services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    assert last is not None and [t.pk for t in last.tasks] == [queued[2].pk]

    services.task_finish(node_id="n1", task_id=str(queued[1].pk), outcome="SUCCEEDED")
    drained = services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    assert drained is not None and (drained.tasks, drained.more) == ([], False)


def test_claim_refuses_a_stream_that_lost_the_node(node, staff_user):
    (task,) = _queue(staff_user, node, 1)
    assert services.tasks_claim_for_delivery(node_id="n1", connection_id="old") is None
    assert services.tasks_claim_for_delivery(node_id="nobody", connection_id=CONN) is None
    assert Task.objects.get(pk=task.pk).status == TaskStatus.QUEUED


def test_start_and_finish_only_the_nodes_own_active_task(node, make_node, staff_user):
    (task,) = _queue(staff_user, node, 1)
    make_node("n2")
    tid = str(task.pk)
    assert not services.task_started(node_id="n1", task_id=tid)  # still queued
    with pytest.raises(NotFound):
        services.task_finish(node_id="n2", task_id=tid, outcome="SUCCEEDED")
    with pytest.raises(NotFound):
        services.task_started(node_id="n1", task_id="not-a-uuid")
    services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    with pytest.raises(NotFound):
        services.task_started(node_id="n2", task_id=tid)
    assert services.task_started(node_id="n1", task_id=tid)
    assert not services.task_started(node_id="n1", task_id=tid)  # once
    assert services.task_finish(
        node_id="n1",
        task_id=tid,
        outcome="FAILED",
        exit_code=3,
        error_code="x" * 70,
        result={"lines": ["a", 1]},
    )
    assert not services.task_finish(node_id="n1", task_id=tid, outcome="SUCCEEDED", exit_code=0)
    done = Task.objects.get(pk=task.pk)
    assert (done.status, done.exit_code, done.error_code, done.result) == (
        TaskStatus.FAILED,
        3,
        "x" * 64,
        {"lines": ["a", 1]},
    )
    assert done.started_at is not None and done.finished_at >= done.started_at


def test_finish_notes_output_the_hub_never_got(node, staff_user):
    (task,) = _queue(staff_user, node, 1)
    services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    services.task_finish(
        node_id="n1", task_id=str(task.pk), outcome="SUCCEEDED", exit_code=0, last_seq=4
    )
    done = Task.objects.get(pk=task.pk)
    assert done.error_message == " [output after seq 0 missing]"
    assert done.result is None and done.started_at == done.finished_at


async def test_frames_handed_to_the_loop_arrive_in_order():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("ordered", channel)
    for batch in range(20):
        events.send_soon([("ordered", {"type": "t", "n": batch * 3 + i}) for i in range(3)])
    await events.sent()
    got = [(await layer.receive(channel))["n"] for _ in range(60)]
    assert got == list(range(60))


async def test_sync_code_on_an_adopted_loop_goes_on_before_the_frame_is_sent():
    """A view run by the ASGI server's loop returns before Redis hears the doorbell; under
    any other loop the frame is sent before the sync call returns."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("doorbell", channel)

    def ring(n: int) -> None:
        events.send_on_commit("doorbell", {"type": "t", "n": n})  # no transaction: at once

    await sync_to_async(ring)(1)  # not adopted: sent before the call returns
    assert (layer.channels[channel].qsize(), (await layer.receive(channel))["n"]) == (1, 1)
    adopt_running_loop()
    await sync_to_async(ring)(2)
    await asyncio.sleep(0)  # the loop's sender runs now
    await events.sent()
    assert (await asyncio.wait_for(layer.receive(channel), 2))["n"] == 2
