"""Every hand-written statement of `mesh.store` against the ORM form of the same step.

Each case runs the store function and the ORM form on the same rows, each inside a savepoint
that is rolled back, and compares what they return and what they leave in the database. The
node rule's SQL forms (`visible_node_counts`, `visible_node_page_ids`, `node_granted_viewers`)
are held to the ORM in test_node_rule_parity.py. Runs on SQLite, and again on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from mesh import services, store
from mesh.models import (
    ACTIVE_STATUSES,
    Node,
    NodeStatsSample,
    Task,
    TaskOutputChunk,
    TaskStatus,
)
from mesh.tests.postgres_rerun import in_child, rerun_on_postgresql

pytestmark = pytest.mark.django_db

TASK_FIELDS = (
    "id",
    "status",
    "exit_code",
    "error_code",
    "error_message",
    "result",
    "last_seq",
    "output_bytes",
    "stored_bytes",
    "dropped_bytes",
    "dispatched_at",
    "started_at",
    "finished_at",
    "updated_at",
)
NODE_FIELDS = (
    "id",
    "status",
    "stats",
    "last_seen_at",
    "updated_at",
    "offline_reason",
    "disconnected_at",
)


class _Rollback(Exception):
    pass


def _same(
    run_store: Callable[[], Any], run_orm: Callable[[], Any], observe: Callable[[], Any]
) -> Any:
    """Run both forms on the same rows (each rolled back); both return and leave the same."""
    seen = []
    for run in (run_store, run_orm):
        with contextlib.suppress(_Rollback), transaction.atomic():
            value = run()
            seen.append((value, observe()))
            raise _Rollback
    assert seen[0] == seen[1]
    return seen[0][0]


def _tasks() -> list[dict[str, Any]]:
    return list(Task.objects.order_by("created_at", "id").values(*TASK_FIELDS))


def _nodes() -> list[dict[str, Any]]:
    return list(Node.objects.order_by("id").values(*NODE_FIELDS))


@pytest.fixture
def fleet(staff_user) -> dict[str, Node]:  # type: ignore[no-untyped-def]
    """Two connected nodes (and one never seen) with tasks in every state."""
    nodes = {}
    for node_id in ("n-a", "n-b", "n-c"):
        nodes[node_id], _ = services.node_create(
            actor=staff_user, node_id=node_id, display_name=node_id
        )
    for node_id in ("n-a", "n-b"):
        services.node_hello(node_id=node_id, connection_id=f"conn-{node_id}")
    now = timezone.now()
    for i, status in enumerate(
        [
            TaskStatus.QUEUED,
            TaskStatus.QUEUED,
            TaskStatus.QUEUED,
            TaskStatus.DISPATCHED,
            TaskStatus.RUNNING,
            TaskStatus.SUCCEEDED,
        ]
    ):
        for node_id in ("n-a", "n-b"):
            task = Task.objects.create(
                node=nodes[node_id],
                kind="shell",
                payload={"command": f"echo {i}", "env": {"A": "é"}},
                timeout=7.5,
                idempotency_key=f"k{i}",
                status=status,
                deliver_by=now + timedelta(seconds=-5 if i == 2 else 300),
            )
            # Distinct creation times, in an order unlike the ids.
            Task.objects.filter(pk=task.pk).update(created_at=now - timedelta(seconds=10 - i))
    return {k: Node.objects.get(pk=v.pk) for k, v in nodes.items()}


def _task(node_id: str, status: str) -> Task:
    return Task.objects.filter(node__node_id=node_id, status=status).order_by("created_at")[0]


def test_task_mark_started(fleet) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    cases = [
        ("n-a", _task("n-a", TaskStatus.DISPATCHED)),  # its own dispatched task
        ("n-b", _task("n-a", TaskStatus.DISPATCHED)),  # another node's
        ("n-a", _task("n-a", TaskStatus.QUEUED)),
        ("n-a", _task("n-a", TaskStatus.RUNNING)),
    ]
    answers = []
    for node_id, task in cases:

        def orm(node_id: str = node_id, task: Task = task) -> Any:
            changed = Task.objects.filter(
                pk=task.pk, status=TaskStatus.DISPATCHED, node__node_id=node_id
            ).update(status=TaskStatus.RUNNING, started_at=now, updated_at=now)
            return (task.kind, task.created_at) if changed else None

        def raw(node_id: str = node_id, task: Task = task) -> Any:
            return store.task_mark_started(key=store.task_key(task.pk), node_id=node_id, now=now)

        answers.append(_same(raw, orm, _tasks))
    assert answers[0] == ("shell", cases[0][1].created_at)
    assert answers[1:] == [None, None, None]


def test_task_mark_finished(fleet) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    cases = [
        ("n-a", _task("n-a", TaskStatus.RUNNING), {"lines": ["ok"], "n": 1.5}),
        ("n-a", _task("n-a", TaskStatus.DISPATCHED), None),  # started_at set to now
        ("n-b", _task("n-a", TaskStatus.RUNNING), None),  # another node's
        ("n-a", _task("n-a", TaskStatus.QUEUED), None),
        ("n-a", _task("n-a", TaskStatus.SUCCEEDED), None),  # a duplicate result
    ]
    Task.objects.filter(pk=cases[0][1].pk).update(last_seq=4)
    answers = []
    for node_id, task, result in cases:

        def orm(node_id: str = node_id, task: Task = task, result: Any = result) -> Any:
            found = Task.objects.filter(
                pk=task.pk, status__in=ACTIVE_STATUSES, node__node_id=node_id
            ).first()
            if found is None:
                return None
            Task.objects.filter(pk=task.pk).update(
                status=TaskStatus.FAILED,
                exit_code=3,
                error_code="boom",
                error_message="it broke",
                result=result,
                finished_at=now,
                started_at=found.started_at or now,
                updated_at=now,
            )
            return found.last_seq, found.kind, found.payload, found.started_at or now

        def raw(node_id: str = node_id, task: Task = task, result: Any = result) -> Any:
            return store.task_mark_finished(
                key=store.task_key(task.pk),
                node_id=node_id,
                status=TaskStatus.FAILED,
                exit_code=3,
                error_code="boom",
                error_message="it broke",
                result=result,
                now=now,
            )

        answers.append(_same(raw, orm, _tasks))
    payload = {"command": "echo 4", "env": {"A": "é"}}
    assert answers[0][:3] == (4, "shell", payload)
    assert answers[2:] == [None, None, None]


def test_node_slots(fleet) -> None:  # type: ignore[no-untyped-def]
    for node_id in ("n-a", "n-c", "nope"):

        def orm(node_id: str = node_id) -> Any:
            node = (
                Node.objects.filter(node_id=node_id)
                .annotate(busy=Count("tasks", filter=Q(tasks__status__in=ACTIVE_STATUSES)))
                .first()
            )
            if node is None:
                return None
            return store.NodeSlots(
                pk=node.pk,
                is_active=node.is_active,
                connection_id=node.connection_id,
                skill_config=node.skill_config,
                busy=node.busy,
            )

        _same(functools.partial(store.node_slots, node_id=node_id), orm, _tasks)
    assert store.node_slots(node_id="n-a").busy == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("slots", [1, 2, 5])
@pytest.mark.parametrize("connection", ["conn-n-a", "conn-stale"])
def test_tasks_claim(fleet, slots: int, connection: str) -> None:  # type: ignore[no-untyped-def]
    node = fleet["n-a"]
    now = timezone.now()

    def orm() -> list[tuple[Any, ...]]:
        if not Node.objects.filter(pk=node.pk, connection_id=connection).exists():
            return []
        picked = list(
            Task.objects.filter(node=node, status=TaskStatus.QUEUED, deliver_by__gt=now)
            .order_by("created_at")
            .values_list("pk", flat=True)[:slots]
        )
        Task.objects.filter(pk__in=picked, status=TaskStatus.QUEUED).update(
            status=TaskStatus.DISPATCHED, dispatched_at=now, updated_at=now
        )
        return [
            (t.pk, t.kind, t.payload, t.timeout, t.idempotency_key, t.created_at, t.status)
            for t in Task.objects.filter(pk__in=picked).order_by("created_at")
        ]

    def raw() -> list[tuple[Any, ...]]:
        claimed = store.tasks_claim(node_pk=node.pk, connection_id=connection, slots=slots, now=now)
        return [
            (t.pk, t.kind, t.payload, t.timeout, t.idempotency_key, t.created_at, t.status)
            for t in claimed
        ]

    claimed = _same(raw, orm, _tasks)
    assert len(claimed) == (min(slots, 2) if connection == "conn-n-a" else 0)  # one is past due


def test_nodes_with_queued_tasks(fleet) -> None:  # type: ignore[no-untyped-def]
    ids = ["n-b", "n-c", *[f"ghost-{i}" for i in range(store.IN_CHUNK + 20)], "n-a"]

    def orm() -> set[str]:
        return set(
            Task.objects.filter(status=TaskStatus.QUEUED, node__node_id__in=ids).values_list(
                "node__node_id", flat=True
            )
        )

    found = _same(lambda: store.nodes_with_queued_tasks(node_ids=ids), orm, _tasks)
    assert found == {"n-a", "n-b"}


def test_output_task_lock(fleet) -> None:  # type: ignore[no-untyped-def]
    task = _task("n-a", TaskStatus.RUNNING)
    Task.objects.filter(pk=task.pk).update(
        last_seq=7, output_bytes=70, stored_bytes=60, dropped_bytes=10
    )
    for node_id in ("n-a", "n-b"):

        def orm(node_id: str = node_id) -> Any:
            return (
                Task.objects.filter(pk=task.pk, node__node_id=node_id)
                .values_list("status", "last_seq", "output_bytes", "stored_bytes", "dropped_bytes")
                .first()
            )

        def raw(node_id: str = node_id) -> Any:
            return store.output_task_lock(key=store.task_key(task.pk), node_id=node_id)

        _same(raw, orm, _tasks)
    assert store.output_task_lock(key=store.task_key(task.pk), node_id="n-a") == (
        "running",
        7,
        70,
        60,
        10,
    )


@pytest.mark.parametrize("start", [True, False])
def test_output_counters_save(fleet, start: bool) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    counters = [9, 900, 800, 100]
    names = ("last_seq", "output_bytes", "stored_bytes", "dropped_bytes")
    for task in (_task("n-a", TaskStatus.DISPATCHED), _task("n-a", TaskStatus.RUNNING)):
        Task.objects.filter(pk=task.pk).update(started_at=None if start else now)

        def orm(task: Task = task) -> None:
            fields: dict[str, Any] = dict(zip(names, counters, strict=True))
            if start:
                current = Task.objects.get(pk=task.pk)
                fields.update(status=TaskStatus.RUNNING, started_at=current.started_at or now)
            Task.objects.filter(pk=task.pk).update(updated_at=now, **fields)

        def raw(task: Task = task) -> None:
            store.output_counters_save(task_id=task.pk, counters=counters, now=now, start=start)

        _same(raw, orm, _tasks)


def test_output_stored_sizes_and_delete(fleet) -> None:  # type: ignore[no-untyped-def]
    task = _task("n-a", TaskStatus.RUNNING)
    for seq in (3, 1, 2):
        TaskOutputChunk.objects.create(
            task=task, seq=seq, stream="stdout", data=b"x" * (seq * 11), offset=0, size=seq
        )

    def orm_sizes() -> list[tuple[int, int]]:
        return [
            (c.pk, len(bytes(c.data)))
            for c in TaskOutputChunk.objects.filter(task=task).order_by("seq")
        ]

    def chunks() -> list[tuple[int, int]]:
        return list(TaskOutputChunk.objects.order_by("pk").values_list("pk", "seq"))

    sizes = _same(lambda: store.output_stored_sizes(task_id=task.pk), orm_sizes, chunks)
    assert [size for _, size in sizes] == [11, 22, 33]
    doomed = [sizes[0][0], sizes[2][0]]
    _same(
        lambda: store.output_chunks_delete(pks=doomed),
        lambda: TaskOutputChunk.objects.filter(pk__in=doomed).delete() and None,
        chunks,
    )
    _same(lambda: store.output_chunks_delete(pks=[]), lambda: None, chunks)


def test_nodes_beating_lock_and_heartbeats_write(fleet) -> None:  # type: ignore[no-untyped-def]
    Node.objects.filter(node_id="n-b").update(skill_config={"shell": True, "files": False})
    ids = ["n-b", "nope", "n-a", "n-c"]

    def orm_rows() -> list[tuple[Any, ...]]:
        return list(
            Node.objects.filter(node_id__in=ids)
            .order_by("id")
            .values_list("id", "node_id", "connection_id", "status", "skill_config")
        )

    def raw_rows() -> list[tuple[Any, ...]]:
        return [
            (pk, node_id, conn, status, store.skill_config_decode(raw))
            for pk, node_id, conn, status, raw in store.nodes_beating_lock(node_ids=ids)
        ]

    rows = _same(raw_rows, orm_rows, _nodes)
    assert [row[1] for row in rows] == ["n-a", "n-b", "n-c"]

    now = timezone.now()
    beats = [
        (fleet["n-a"].pk, "busy", {"cpu_percent": 12.5, "load_avg": [0.1, 0.2], "名": "é"}),
        (fleet["n-b"].pk, "online", {}),
    ]
    Node.objects.filter(pk=fleet["n-b"].pk).update(offline_reason="lost", disconnected_at=now)

    def orm_write() -> None:
        for pk, status, stats in beats:
            Node.objects.filter(pk=pk).update(
                stats=stats,
                status=status,
                last_seen_at=now,
                updated_at=now,
                offline_reason="",
                disconnected_at=None,
            )

    _same(lambda: store.heartbeats_write(beats=beats, now=now), orm_write, _nodes)


def test_stats_sampled_nodes(fleet) -> None:  # type: ignore[no-untyped-def]
    start = timezone.now().replace(microsecond=0)
    NodeStatsSample.objects.create(node=fleet["n-a"], taken_at=start)
    NodeStatsSample.objects.create(node=fleet["n-b"], taken_at=start - timedelta(seconds=60))
    pks = [fleet[n].pk for n in ("n-a", "n-b", "n-c")] + list(range(10_000, 10_600))

    def orm() -> set[int]:
        return set(
            NodeStatsSample.objects.filter(taken_at=start, node_id__in=pks).values_list(
                "node_id", flat=True
            )
        )

    found = _same(lambda: store.stats_sampled_nodes(node_pks=pks, taken_at=start), orm, list)
    assert found == {fleet["n-a"].pk}


def test_secret_layers_version(staff_user) -> None:  # type: ignore[no-untyped-def]
    from preferences.models import PreferenceLayer

    def orm() -> tuple[int, Any]:
        layers = PreferenceLayer.objects.exclude(secrets={})
        return layers.count(), layers.aggregate(latest=Max("updated_at"))["latest"]

    assert _same(store.secret_layers_version, orm, list) == (0, None)
    PreferenceLayer.objects.create(scope="system", kind="llm", secrets={"api_key": "x"})
    PreferenceLayer.objects.create(scope="system", kind="tts", secrets={})
    PreferenceLayer.objects.create(scope="user", user=staff_user, kind="llm", secrets={"k": "y"})
    count, latest = _same(store.secret_layers_version, orm, list)
    assert count == 2 and latest is not None


def test_task_key_is_the_orm_form() -> None:
    key = uuid.uuid4()
    assert store.task_key(key) == Task._meta.pk.get_db_prep_save(key, connection=_conn())


def _conn() -> Any:
    from django.db import connection

    return connection


@pytest.mark.skipif(not in_child(), reason="only in the PostgreSQL run")
def test_the_rerun_is_on_postgresql() -> None:
    assert _conn().vendor == "postgresql"


@pytest.mark.postgres
@pytest.mark.skipif(in_child(), reason="this is the PostgreSQL run")
def test_the_store_parity_holds_on_postgresql(postgres_url: str) -> None:
    rerun_on_postgresql(postgres_url, "mesh/tests/test_store_parity.py")
