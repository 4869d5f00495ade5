"""Coalesced `task.output` frames on `/ws/nodes/{id}/`: `first_seq`..`seq`, gaps filled."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from mesh import events, services
from mesh.models import Task, TaskOutputChunk
from mesh.services.output import OutputChunk, output_append_many
from mesh.tests.consumers.conftest import communicator, login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def task(user, staff_user, make_node, grant) -> Task:  # type: ignore[no-untyped-def]
    node, _ = make_node("node-a")
    grant(user, node)
    task = services.task_dispatch(
        actor=staff_user, node=node, kind="shell", payload={"command": "yes"}
    )
    services.node_hello(node_id="node-a", connection_id="conn-1")
    services.tasks_claim_for_delivery(node_id="node-a", connection_id="conn-1")
    return task


@database_sync_to_async
def _append(tid: str, seqs: range, stream: str = "stdout") -> None:
    chunks = [OutputChunk(tid, s, stream, f"line {s}\n".encode()) for s in seqs]
    output_append_many(node_id="node-a", chunks=chunks)


@database_sync_to_async
def _store_silently(task: Task, seqs: range) -> None:
    """Chunks stored whose live frames were lost (as a full channel layer drops them)."""
    for s in seqs:
        data = f"line {s}\n".encode()
        TaskOutputChunk.objects.create(task=task, seq=s, stream="stdout", data=data, size=len(data))
    Task.objects.filter(pk=task.pk).update(last_seq=seqs[-1])


def _view(frames: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(f.get("first_seq"), f["seq"], f["data"], f.get("replayed", False)) for f in frames]


async def test_one_frame_per_batch_and_gaps_before_first_seq_are_filled(
    user, task, channel_layer_kind
):
    tid = str(task.pk)
    ws = communicator("/ws/nodes/node-a/", await login_cookie(user))
    assert (await ws.connect(timeout=5))[0] is True
    assert (await ws.receive_json_from(timeout=5))["type"] == "node.snapshot"

    await _append(tid, range(1, 4))
    frame = await ws.receive_json_from(timeout=5)
    assert frame == {
        "type": "task.output",
        "first_seq": 1,
        "seq": 3,
        "task_id": tid,
        "stream": "stdout",
        "data": "line 1\nline 2\nline 3\n",
        "truncated": False,
        "skipped": 0,
    }
    await _store_silently(task, range(4, 6))
    await _append(tid, range(6, 8))  # first_seq 6 follows 3: 4 and 5 come from storage
    frames = [await ws.receive_json_from(timeout=5) for _ in range(3)]
    assert _view(frames) == [
        (4, 4, "line 4\n", True),
        (5, 5, "line 5\n", True),
        (6, 7, "line 6\nline 7\n", False),
    ]
    await _append(tid, range(8, 9))  # no gap: no storage read, just the frame
    assert _view([await ws.receive_json_from(timeout=5)]) == [(8, 8, "line 8\n", False)]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_a_frame_overlapping_a_replay_is_replaced_by_the_stored_chunks(user, task):
    tid = str(task.pk)
    await _append(tid, range(1, 4))
    ws = communicator("/ws/nodes/node-a/?after_seq=0", await login_cookie(user))
    assert (await ws.connect(timeout=5))[0] is True
    assert (await ws.receive_json_from(timeout=5))["type"] == "node.snapshot"
    replayed = [await ws.receive_json_from(timeout=5) for _ in range(3)]
    assert [f["seq"] for f in replayed] == [1, 2, 3]
    # A frame covering 2-5 (sent before the replay read storage, say): 4-5 from storage only.
    await _store_silently(task, range(4, 6))
    group = events.group_name(events.NODE_CONSOLE_GROUP, node_id="node-a")
    await events.asend(
        group,
        {"type": "task.output", "first_seq": 2, "seq": 5, "task_id": tid, "stream": "stdout",
         "data": "line 2\nline 3\nline 4\nline 5\n", "truncated": False, "skipped": 0},
    )  # fmt: skip
    frames = [await ws.receive_json_from(timeout=5) for _ in range(2)]
    assert _view(frames) == [(4, 4, "line 4\n", True), (5, 5, "line 5\n", True)]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()
