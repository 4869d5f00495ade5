"""mesh/services/stats.py: the sample bucket and history window come from settings and shape
what the heartbeat writes keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mesh.models import NodeStatsSample
from mesh.services.stats import stats_bucket_seconds, stats_history_seconds, stats_sample_record


def test_defaults_and_settings(settings) -> None:  # type: ignore[no-untyped-def]
    del settings.MESH_STATS_SAMPLE_SECONDS
    del settings.MESH_STATS_HISTORY_SECONDS
    assert (stats_bucket_seconds(), stats_history_seconds()) == (30, 3600)
    settings.MESH_STATS_SAMPLE_SECONDS = "60"
    settings.MESH_STATS_HISTORY_SECONDS = 600
    assert (stats_bucket_seconds(), stats_history_seconds()) == (60, 600)


@pytest.mark.django_db
def test_bucket_and_history_bound_the_samples(settings, make_node) -> None:  # type: ignore[no-untyped-def]
    settings.MESH_STATS_SAMPLE_SECONDS = 60
    settings.MESH_STATS_HISTORY_SECONDS = 180
    node, _ = make_node("s1")
    start = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    stats = {"cpu_percent": 5.0}
    assert stats_sample_record(node=node, stats=stats, now=start) is True
    assert stats_sample_record(node=node, stats=stats, now=start + timedelta(seconds=59)) is False
    assert stats_sample_record(node=node, stats=stats, now=start + timedelta(seconds=60)) is True
    assert stats_sample_record(node=node, stats=stats, now=start + timedelta(seconds=200)) is True
    taken = sorted(NodeStatsSample.objects.filter(node=node).values_list("taken_at", flat=True))
    # The first bucket (12:00) is older than 180 s at 12:03:20 and was pruned.
    assert taken == [start + timedelta(seconds=60), start + timedelta(seconds=180)]
