"""A flood of output past the cap over real gRPC: held in hand, then stored whole and exact."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from mesh import events, selectors, services
from mesh.agent.pb import mesh_pb2
from mesh.models import Node, Task, TaskOutputChunk, TaskStatus
from mesh.tests.meshkit import TestNode, join

pytestmark = pytest.mark.django_db(transaction=True)

CHUNKS = 60  # 100-byte chunks against a cap of 1,000 bytes


@pytest.fixture
async def joined(mesh_address, make_node, user, grant, settings):  # type: ignore[no-untyped-def]
    settings.MESH_OUTPUT_CAP_BYTES = 1000
    node, token = await sync_to_async(make_node)("node-a")
    await sync_to_async(grant)(user, node)
    client = TestNode(mesh_address, "node-a", await join(mesh_address, "node-a", token))
    yield client
    await client.hang_up()


async def _start_task(client: TestNode, user) -> str:  # type: ignore[no-untyped-def]
    node = await sync_to_async(Node.objects.get)(node_id="node-a")
    await sync_to_async(services.task_dispatch)(
        actor=user, node=node, kind="shell", payload={"command": "yes"}
    )
    tid = (await client.recv("task_assign")).task_assign.task_id
    await client.send(task_started=mesh_pb2.TaskStarted(task_id=tid))
    return tid


def _line(seq: int) -> bytes:
    return b"%099d\n" % seq


@sync_to_async
def _assert_head_and_tail(tid: str) -> None:
    """What any order of batches, holds and resends must end with: 1-5, marker, 56-60."""
    task = Task.objects.get(pk=tid)
    assert (task.last_seq, task.output_bytes) == (CHUNKS, 100 * CHUNKS)
    assert (task.stored_bytes, task.dropped_bytes) == (1000, 100 * CHUNKS - 1000)
    seqs = list(TaskOutputChunk.objects.filter(task_id=tid).values_list("seq", flat=True))
    assert seqs == [1, 2, 3, 4, 5, 56, 57, 58, 59, 60]
    head = b"".join(_line(s) for s in range(1, 6)).decode()
    tail = b"".join(_line(s) for s in range(56, 61)).decode()
    marker = selectors.dropped_marker(100 * CHUNKS - 1000)
    assert selectors.task_text(task=task) == (head + marker + tail, "")


async def test_flood_past_the_cap_is_stored_whole_before_the_result(joined, user):
    await joined.connect()
    tid = await _start_task(joined, user)
    for seq in range(1, CHUNKS + 1):  # no waiting for acks
        await joined.output(tid, seq, _line(seq))
    await joined.result(tid, exit_code=0, last_seq=CHUNKS)
    await joined.recv("result_ack")
    acks = [m.output_ack.seq for m in joined.backlog if m.WhichOneof("body") == "output_ack"]
    assert acks == sorted(acks) and acks[-1] == CHUNKS
    done = await sync_to_async(Task.objects.get)(pk=tid)
    assert (done.status, done.error_message) == (TaskStatus.SUCCEEDED, "")
    await _assert_head_and_tail(tid)


async def test_a_cut_mid_flood_loses_nothing_the_node_still_holds(joined, user, mesh_address):
    await joined.connect()
    tid = await _start_task(joined, user)
    for seq in range(1, CHUNKS + 1):
        await joined.output(tid, seq, _line(seq))
    while (await joined.recv("output_ack")).output_ack.seq < 40:
        pass  # chunks falling out of the tail are acked while newer ones may be held
    await joined.hang_up()
    await asyncio.sleep(0.3)
    again = TestNode(mesh_address, "node-a", joined.credential)
    try:
        welcome = await again.connect(
            held=[mesh_pb2.HeldTask(task_id=tid, last_seq=CHUNKS, finished=True)]
        )
        acked = welcome.acked_seq[tid]
        assert 40 <= acked <= CHUNKS
        for seq in range(acked + 1, CHUNKS + 1):  # what the node still holds, as an agent would
            await again.output(tid, seq, _line(seq))
        await again.result(tid, exit_code=0, last_seq=CHUNKS)
        await again.recv("result_ack")
    finally:
        await again.hang_up()
    done = await sync_to_async(Task.objects.get)(pk=tid)
    assert (done.status, done.error_message) == (TaskStatus.SUCCEEDED, "")
    await _assert_head_and_tail(tid)


async def test_goodbye_stores_what_is_held(joined, user):
    await joined.connect()
    tid = await _start_task(joined, user)
    for seq in range(1, CHUNKS + 1):
        await joined.output(tid, seq, _line(seq))
    await joined.goodbye()
    assert await joined.status() is not None  # the hub ends the call after the goodbye
    await _assert_head_and_tail(tid)


async def test_watchers_get_every_seq_once_in_order_and_the_newest_bytes(joined, user):
    """Live frames of a flood are coalesced across batches, never a seq twice or left out."""
    layer = get_channel_layer()
    watch = await layer.new_channel()
    await layer.group_add(events.group_name(events.NODE_CONSOLE_GROUP, node_id="node-a"), watch)
    await joined.connect()
    tid = await _start_task(joined, user)
    for seq in range(1, CHUNKS + 1):
        await joined.output(tid, seq, _line(seq))
    await joined.result(tid, exit_code=0, last_seq=CHUNKS)
    await joined.recv("result_ack")
    covered: list[int] = []
    last: dict = {}
    while not covered or covered[-1] < CHUNKS:
        frame = await asyncio.wait_for(layer.receive(watch), 5)
        if frame["type"] == events.TASK_OUTPUT:
            covered += range(frame["first_seq"], frame["seq"] + 1)
            last = frame
    assert covered == list(range(1, CHUNKS + 1))
    assert last["data"].endswith(_line(CHUNKS).decode())


async def test_a_line_printed_right_after_another_is_not_held_back(joined, user, settings):
    """Pacing is for floods: a lone line goes to watchers at once, however recent the last
    frame (with a minute-long pacing interval, a paced line would miss the timeout)."""
    settings.MESH_LIVE_FRAME_INTERVAL = 60.0
    layer = get_channel_layer()
    watch = await layer.new_channel()
    await layer.group_add(events.group_name(events.NODE_CONSOLE_GROUP, node_id="node-a"), watch)
    await joined.connect()
    tid = await _start_task(joined, user)
    for seq in (1, 2, 3):
        await joined.output(tid, seq, _line(seq))
        while True:
            frame = await asyncio.wait_for(layer.receive(watch), 10)
            if frame["type"] == events.TASK_OUTPUT:
                break
        assert (frame["first_seq"], frame["seq"], frame["data"]) == (seq, seq, _line(seq).decode())
        await joined.recv("output_ack")
