"""Output intake: each seq stored once, a cap that keeps head and tail, foreign tasks refused."""

from __future__ import annotations

import pytest

from cortex.errors import NotFound
from mesh import selectors, services
from mesh.models import Task, TaskOutputChunk, TaskStatus
from mesh.services.output import OutputChunk, output_append, output_append_many

pytestmark = pytest.mark.django_db


@pytest.fixture
def running_task(user, make_node, grant):  # type: ignore[no-untyped-def]
    node, _ = make_node("n1")
    grant(user, node)
    task = services.task_dispatch(actor=user, node=node, kind="shell", payload={"command": "x"})
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.DISPATCHED)
    return task


def test_duplicates_are_ignored(running_task):
    tid = str(running_task.pk)
    assert output_append(node_id="n1", task_id=tid, seq=1, stream="stdout", data=b"a") == 1
    assert output_append(node_id="n1", task_id=tid, seq=2, stream="stdout", data=b"b") == 2
    assert output_append(node_id="n1", task_id=tid, seq=1, stream="stdout", data=b"X") == 2
    assert output_append(node_id="n1", task_id=tid, seq=2, stream="stdout", data=b"Y") == 2
    assert list(TaskOutputChunk.objects.values_list("seq", "data")) == [(1, b"a"), (2, b"b")]
    running_task.refresh_from_db()
    assert (running_task.status, running_task.output_bytes) == (TaskStatus.RUNNING, 2)
    assert selectors.task_text(task=running_task) == ("ab", "")


def test_cap_keeps_head_and_tail(running_task, settings):
    settings.MESH_OUTPUT_CAP_BYTES = 100
    tid = str(running_task.pk)
    for seq in range(1, 21):  # 200 bytes in 10-byte chunks
        output_append(
            node_id="n1", task_id=tid, seq=seq, stream="stdout", data=f"{seq:09d}\n".encode()
        )
    running_task.refresh_from_db()
    assert running_task.output_bytes == 200
    assert running_task.stored_bytes == 100
    assert running_task.dropped_bytes == 100
    kept = list(TaskOutputChunk.objects.order_by("seq").values_list("seq", flat=True))
    assert kept == [1, 2, 3, 4, 5, 16, 17, 18, 19, 20]
    stdout, stderr = selectors.task_text(task=running_task)
    head = "".join(f"{i:09d}\n" for i in range(1, 6))
    tail = "".join(f"{i:09d}\n" for i in range(16, 21))
    assert stdout == head + selectors.dropped_marker(100) + tail
    assert stderr == ""
    # A resend of a dropped chunk is not stored again.
    output_append(node_id="n1", task_id=tid, seq=8, stream="stdout", data=b"again")
    assert TaskOutputChunk.objects.count() == 10


def test_output_for_another_nodes_task_is_refused(running_task, make_node):
    make_node("n2")
    with pytest.raises(NotFound) as caught:
        output_append(node_id="n2", task_id=str(running_task.pk), seq=1, stream="stdout", data=b"x")
    assert caught.value.code == "task_not_found"
    with pytest.raises(NotFound):
        services.task_finish(node_id="n2", task_id=str(running_task.pk), outcome="SUCCEEDED")
    assert TaskOutputChunk.objects.count() == 0
    running_task.refresh_from_db()
    assert running_task.status == TaskStatus.DISPATCHED


def test_duplicate_result_is_ignored(running_task):
    tid = str(running_task.pk)
    assert services.task_finish(node_id="n1", task_id=tid, outcome="SUCCEEDED", exit_code=0)
    assert not services.task_finish(node_id="n1", task_id=tid, outcome="FAILED", exit_code=9)
    running_task.refresh_from_db()
    assert (running_task.status, running_task.exit_code) == (TaskStatus.SUCCEEDED, 0)


def _second_task(user, node_id: str = "n1") -> Task:  # type: ignore[no-untyped-def]
    from mesh.models import Node

    node = Node.objects.get(node_id=node_id)
    task = services.task_dispatch(actor=user, node=node, kind="shell", payload={"command": "y"})
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.DISPATCHED)
    return task


def test_batch_stores_each_chunk_once_per_task_within_the_cap(
    running_task, user, settings, django_capture_on_commit_callbacks
):
    settings.MESH_OUTPUT_CAP_BYTES = 100
    a, b = str(running_task.pk), str(_second_task(user).pk)
    output_append(node_id="n1", task_id=a, seq=1, stream="stdout", data=b"000000001\n")
    chunks = [OutputChunk(a, 1, "stdout", b"resent")]  # stored already: ignored
    for seq in range(2, 21):  # task a: 200 bytes in all, in 10-byte chunks
        chunks.append(OutputChunk(a, seq, "stdout", f"{seq:09d}\n".encode()))
        if seq <= 3:
            chunks.append(OutputChunk(b, seq - 1, "stderr", f"b{seq - 1}".encode()))
    chunks.append(OutputChunk(b, 2, "stderr", b"dup"))  # twice in one batch: first one wins
    with django_capture_on_commit_callbacks() as callbacks:
        acked = output_append_many(node_id="n1", chunks=chunks)
    assert acked == {a: 20, b: 2}
    assert len(callbacks) == 1  # one hop for all live frames
    task_a, task_b = Task.objects.get(pk=a), Task.objects.get(pk=b)
    assert (task_a.output_bytes, task_a.stored_bytes, task_a.dropped_bytes) == (200, 100, 100)
    assert (task_a.status, task_b.status) == (TaskStatus.RUNNING, TaskStatus.RUNNING)
    assert (task_b.last_seq, task_b.output_bytes, task_b.dropped_bytes) == (2, 4, 0)
    kept_a = list(
        TaskOutputChunk.objects.filter(task_id=a).order_by("seq").values_list("seq", flat=True)
    )
    assert kept_a == [1, 2, 3, 4, 5, 16, 17, 18, 19, 20]
    assert selectors.task_text(task=task_a)[0] == (
        "".join(f"{i:09d}\n" for i in range(1, 6))
        + selectors.dropped_marker(100)
        + "".join(f"{i:09d}\n" for i in range(16, 21))
    )
    rows_b = TaskOutputChunk.objects.filter(task_id=b).order_by("seq")
    assert list(rows_b.values_list("seq", "stream", "data")) == [
        (1, "stderr", b"b1"),
        (2, "stderr", b"b2"),
    ]
    # The whole batch again: nothing new stored, same acks.
    assert output_append_many(node_id="n1", chunks=chunks) == {a: 20, b: 2}
    assert TaskOutputChunk.objects.count() == 12


def test_batch_with_another_nodes_task_is_refused_whole(running_task, make_node, grant, user):
    node2, _ = make_node("n2")
    grant(user, node2)
    foreign = str(running_task.pk)
    own = str(_second_task(user, "n2").pk)
    chunks = [OutputChunk(own, 1, "stdout", b"mine"), OutputChunk(foreign, 1, "stdout", b"x")]
    with pytest.raises(NotFound) as caught:
        output_append_many(node_id="n2", chunks=chunks)
    assert caught.value.code == "task_not_found"
    assert TaskOutputChunk.objects.count() == 0
    rows = Task.objects.values_list("last_seq", "output_bytes", "status")
    assert sorted(rows) == [(0, 0, TaskStatus.DISPATCHED), (0, 0, TaskStatus.DISPATCHED)]


class _Peer:
    def __init__(self, peer: str) -> None:
        self._peer = peer

    def peer(self) -> str:
        return self._peer


@pytest.mark.parametrize(
    ("peer", "ip"),
    [
        ("ipv4:127.0.0.1:5000", "127.0.0.1"),
        ("ipv6:%5B::1%5D:5000", "::1"),
        ("ipv6:[fe80::1]:3", "fe80::1"),
        ("unix:/tmp/sock", None),
    ],
)
def test_peer_ip_decodes_grpc_peer_strings(peer, ip):
    from mesh.grpc.auth import peer_ip

    assert peer_ip(_Peer(peer)) == ip  # type: ignore[arg-type]  # a context with only peer()
