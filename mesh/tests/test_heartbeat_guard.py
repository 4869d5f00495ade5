"""One node must never hurt the others: hostile heartbeat stats are cleaned at the gRPC edge,
and a row the database refuses costs only that node's beat."""

from __future__ import annotations

import asyncio
import math

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from mesh import services
from mesh.agent.pb import mesh_pb2
from mesh.grpc.messages import stats_dict
from mesh.models import Node, NodeStatsSample
from mesh.services.stats import MAX_CORES, MAX_MEMORY_BYTES, stats_clean
from mesh.tests.meshkit import TestNode, join

NAN, INF = float("nan"), float("inf")
SANE = {
    "cpu_percent": 12.5,
    "cpu_per_core": [10.0, 15.0],
    "cpu_count": 2,
    "cpu_freq_mhz": 2400.0,
    "memory_used": 400,
    "memory_total": 1000,
    "memory_available": 600,
    "memory_percent": 40.0,
    "load_avg": [0.5, 0.4, 0.3],
    "active_tasks": 1,
}


# ---------------------------------------------------------------------------- the sanitiser


def test_plausible_stats_pass_unchanged():
    assert stats_clean(SANE) is SANE  # the hot path: no copy, no rebuild


@pytest.mark.parametrize("key", ["cpu_percent", "memory_percent", "cpu_freq_mhz"])
@pytest.mark.parametrize("bad", [NAN, INF, -INF, "12", None, True, [1.0], {"a": 1}])
def test_a_float_that_is_no_finite_number_is_dropped(key, bad):
    clean = stats_clean({**SANE, key: bad})
    assert key not in clean
    assert {k: v for k, v in clean.items() if k != key} == {
        k: v for k, v in SANE.items() if k != key
    }


@pytest.mark.parametrize("key", ["cpu_count", "memory_used", "active_tasks"])
@pytest.mark.parametrize("bad", [NAN, INF, "7", None, False])
def test_an_int_that_is_no_finite_number_is_dropped(key, bad):
    assert key not in stats_clean({**SANE, key: bad})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("cpu_percent", 250.0, 100.0),
        ("cpu_percent", -3.0, 0.0),
        ("memory_percent", 1e300, 100.0),
        ("cpu_freq_mhz", -1.0, 0.0),
        ("cpu_count", 10**9, MAX_CORES),
        ("memory_used", 2**64 - 1, MAX_MEMORY_BYTES),
        ("memory_total", 10**400, MAX_MEMORY_BYTES),
        ("memory_available", -5, 0),
        ("active_tasks", -1, 0),
    ],
)
def test_absurd_numbers_are_clamped(key, value, expected):
    clean = stats_clean({**SANE, key: value})
    assert clean[key] == expected
    assert type(clean[key]) is type(expected)


def test_lists_are_capped_and_their_bad_entries_zeroed():
    clean = stats_clean(
        {
            "cpu_per_core": [NAN, INF, -INF, -5.0, 500.0, "x", None, 42.0] + [1.0] * 5000,
            "load_avg": [NAN, 1e308 * 10, 2.0, 3.0, 4.0],
        }
    )
    assert clean["cpu_per_core"][:8] == [0.0, 0.0, 0.0, 0.0, 100.0, 0.0, 0.0, 42.0]
    assert len(clean["cpu_per_core"]) == MAX_CORES
    assert clean["load_avg"] == [0.0, 0.0, 2.0]


@pytest.mark.parametrize("bad", ["1,2", 7, None, {"0": 1.0}])
def test_a_list_that_is_no_list_is_dropped(bad):
    assert "cpu_per_core" not in stats_clean({**SANE, "cpu_per_core": bad})


def test_unknown_keys_and_non_objects():
    assert stats_clean({**SANE, "x" * 10_000: 1, "cmd": "rm -rf /"}) == SANE
    assert stats_clean(["cpu_percent", 1]) == {}  # type: ignore[arg-type]
    assert stats_clean({}) == {}


def test_the_edge_cleans_every_heartbeat():
    stats = mesh_pb2.NodeStats(
        cpu_percent=NAN,
        cpu_per_core=[INF] * 3000,
        memory_percent=-INF,
        memory_used=2**64 - 1,
        load_avg=[NAN, -1.0, 1.0, 2.0],
    )
    clean = stats_dict(stats)
    assert "cpu_percent" not in clean and "memory_percent" not in clean
    assert clean["cpu_per_core"] == [0.0] * MAX_CORES
    assert clean["memory_used"] == MAX_MEMORY_BYTES
    assert clean["load_avg"] == [0.0, 0.0, 1.0]
    assert all(math.isfinite(v) for v in clean["cpu_per_core"] + clean["load_avg"])


# ---------------------------------------------------------------------------- the flush


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    [
        {"cpu_percent": NAN},
        {"load_avg": [INF]},
        {"active_tasks": "many"},
        {"active_tasks": NAN},
        {"cpu_percent": object()},
    ],
    ids=["nan", "inf-in-list", "text-count", "nan-count", "unencodable"],
)
def test_a_row_the_database_refuses_costs_only_its_own_beat(make_node, bad, caplog):
    """Stats that skipped the edge (straight into the flush): the others are still written."""
    for node_id in ("good-1", "bad", "good-2"):
        make_node(node_id)
        services.node_hello(node_id=node_id, connection_id=f"c-{node_id}")
    Node.objects.update(last_seen_at=None)
    written = services.heartbeat_flush(
        beats={
            "good-1": ("c-good-1", dict(SANE)),
            "bad": ("c-bad", {**SANE, **bad}),
            "good-2": ("c-good-2", dict(SANE)),
        }
    )
    nodes = {n.node_id: n for n in Node.objects.all()}
    for node_id in ("good-1", "good-2"):
        assert nodes[node_id].last_seen_at is not None
        assert nodes[node_id].stats == SANE
        assert nodes[node_id].status == "online"
    assert NodeStatsSample.objects.filter(node__node_id__startswith="good-").count() == 2
    if written == 2:  # the database refused the row: it alone is lost, and logged
        assert nodes["bad"].last_seen_at is None
        assert nodes["bad"].stats == {}
        assert "refused 1 of 3 beats" in caplog.text
        assert not NodeStatsSample.objects.filter(node__node_id="bad").exists()
    else:  # a value the database takes (active_tasks is only read by the flush)
        assert written == 3


@pytest.mark.django_db
def test_history_samples_are_cleaned(make_node):
    node, _ = make_node("node-a")
    now = timezone.now()
    stats = {"cpu_percent": NAN, "memory_percent": INF, "memory_used": 2**70, "active_tasks": -4}
    assert services.stats_sample_record(node=node, stats=stats, now=now) is True
    sample = NodeStatsSample.objects.get()
    assert (sample.cpu_percent, sample.memory_percent) == (0.0, 0.0)  # unknown, not 100 %
    assert (sample.memory_used, sample.active_tasks) == (MAX_MEMORY_BYTES, 0)


# ---------------------------------------------------------------------------- over gRPC

HEALTHY = 50


def hostile_stats(round_: int) -> mesh_pb2.NodeStats:
    """One of several kinds of poisoned stats, in turn."""
    kinds = [
        mesh_pb2.NodeStats(cpu_percent=NAN, memory_percent=NAN, cpu_freq_mhz=NAN),
        mesh_pb2.NodeStats(cpu_percent=INF, memory_percent=-INF, load_avg=[INF, -INF, NAN]),
        mesh_pb2.NodeStats(cpu_per_core=[NAN, INF, -1e308] * 40_000, load_avg=[1.0] * 10_000),
        mesh_pb2.NodeStats(
            cpu_percent=-50.0,
            memory_used=2**64 - 1,
            memory_total=2**64 - 1,
            cpu_count=2**32 - 1,
            active_tasks=2**32 - 1,
        ),
    ]
    return kinds[round_ % len(kinds)]


@pytest.mark.django_db(transaction=True)
async def test_a_hostile_node_never_takes_healthy_nodes_offline(mesh_address, make_node):
    """Fifty healthy nodes beat while one floods poisoned beats, for longer than the silence
    window (three intervals of 0.5 s plus the flush slack): every healthy one stays online and
    its last_seen keeps moving."""
    ids = [f"ok-{i:02d}" for i in range(HEALTHY)]
    tokens = {}
    for node_id in [*ids, "hostile"]:
        tokens[node_id] = (await sync_to_async(make_node)(node_id))[1]
    clients = []
    for node_id in [*ids, "hostile"]:
        credential = await join(mesh_address, node_id, tokens[node_id])
        clients.append(TestNode(mesh_address, node_id, credential))
    healthy, hostile = clients[:-1], clients[-1]
    await asyncio.gather(*(c.connect() for c in clients))
    beaters = [c.keep_beating(0.2) for c in healthy]

    async def flood() -> None:
        round_ = 0
        while True:
            await hostile.send(heartbeat=mesh_pb2.Heartbeat(stats=hostile_stats(round_)))
            round_ += 1
            await asyncio.sleep(0.02)

    @sync_to_async
    def seen() -> dict[str, tuple[str, object]]:
        return {
            n: (s, t)
            for n, s, t in Node.objects.filter(node_id__in=ids).values_list(
                "node_id", "status", "last_seen_at"
            )
        }

    flooder = asyncio.create_task(flood())
    try:
        start = await seen()
        loop = asyncio.get_running_loop()
        until = loop.time() + 3 * 0.5 + 2.0 + 2.5  # past the silence window, with margin
        while loop.time() < until:
            await asyncio.sleep(0.25)
            now = await seen()
            offline = sorted(n for n, (status, _) in now.items() if status == "offline")
            assert offline == [], f"healthy nodes went offline: {offline}"
            assert not flooder.done()
        assert all(now[n][1] > start[n][1] for n in ids), "last_seen stopped advancing"
        node = await sync_to_async(Node.objects.get)(node_id="hostile")
        assert node.status in ("online", "busy")
        stored = node.stats
        assert len(stored.get("cpu_per_core", [])) <= MAX_CORES
        assert len(stored.get("load_avg", [])) <= 3
    finally:
        flooder.cancel()
        for task in beaters:
            task.cancel()
        await asyncio.gather(*(c.hang_up() for c in clients), return_exceptions=True)
