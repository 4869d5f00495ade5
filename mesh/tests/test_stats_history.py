"""Stats history: one sample per bucket, pruned after an hour, served to those who may see."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from mesh import services
from mesh.models import NodeStatsSample

pytestmark = pytest.mark.django_db


def test_heartbeats_are_downsampled_and_pruned(make_node, settings):
    settings.MESH_STATS_SAMPLE_SECONDS = 30
    node, _ = make_node("node-a")
    now = timezone.now().replace(second=10, microsecond=0)
    stats = {"cpu_percent": 10.0, "memory_percent": 20.0, "memory_used": 5, "memory_total": 9}
    assert services.stats_sample_record(node=node, stats=stats, now=now) is True
    assert (
        services.stats_sample_record(
            node=node, stats={"cpu_percent": 90.0}, now=now + timedelta(seconds=5)
        )
        is False
    )
    later = now + timedelta(minutes=61)
    assert services.stats_sample_record(node=node, stats={"cpu_percent": 300}, now=later) is True
    samples = list(NodeStatsSample.objects.values_list("taken_at", "cpu_percent", "memory_used"))
    assert samples == [(later.replace(second=0), 100.0, 0)]


def test_heartbeat_flush_records_a_sample(make_node):
    node, _ = make_node("node-a")
    services.node_hello(node_id="node-a", connection_id="c1")
    services.heartbeat_flush(beats={"node-a": ("c1", {"cpu_percent": 7.5, "active_tasks": 1})})
    services.heartbeat_flush(beats={"node-a": ("c1", {"cpu_percent": 8.5})})
    assert list(NodeStatsSample.objects.values_list("cpu_percent", "active_tasks")) in (
        [(7.5, 1)],
        [(7.5, 1), (8.5, 0)],  # the two flushes fell on both sides of a bucket boundary
    )


def test_stats_endpoint(user, make_user, make_node, grant):
    node, _ = make_node("node-a")
    grant(user, node)
    services.node_hello(node_id="node-a", connection_id="c1")
    services.heartbeat_flush(
        beats={"node-a": ("c1", {"cpu_percent": 7.5, "memory_percent": 50.0, "memory_total": 8})}
    )
    client = APIClient()
    client.force_authenticate(user)
    body = client.get("/api/v1/nodes/node-a/stats/").json()
    assert body["node_id"] == "node-a"
    assert (body["interval_seconds"], body["window_seconds"]) == (30, 3600)
    [sample] = body["samples"]
    assert {k: sample[k] for k in ("cpu_percent", "memory_percent", "memory_total")} == {
        "cpu_percent": 7.5,
        "memory_percent": 50.0,
        "memory_total": 8,
    }

    stranger = APIClient()
    stranger.force_authenticate(make_user("eve@example.com"))
    response = stranger.get("/api/v1/nodes/node-a/stats/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert APIClient().get("/api/v1/nodes/node-a/stats/").status_code in (401, 403)


def test_batch_recording_takes_three_queries(make_node, django_assert_num_queries):
    a, _ = make_node("node-a")
    b, _ = make_node("node-b")
    now = timezone.now().replace(second=40, microsecond=0)
    services.stats_sample_record(node=a, stats={"cpu_percent": 1.0}, now=now)
    with django_assert_num_queries(3):
        written = services.stats_samples_record_many(
            samples=[(a.pk, {"cpu_percent": 2.0}), (b.pk, {"cpu_percent": 3.0})], now=now
        )
    assert written == 1
    assert sorted(NodeStatsSample.objects.values_list("node__node_id", "cpu_percent")) == [
        ("node-a", 1.0),
        ("node-b", 3.0),
    ]
    assert services.stats_samples_record_many(samples=[], now=now) == 0
