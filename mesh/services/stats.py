"""Stats history writes: downsample heartbeats to one sample per bucket and prune the old."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from mesh import rawsql
from mesh.models import Node, NodeStatsSample


def stats_bucket_seconds() -> int:
    return int(getattr(settings, "MESH_STATS_SAMPLE_SECONDS", 30))


def stats_history_seconds() -> int:
    return int(getattr(settings, "MESH_STATS_HISTORY_SECONDS", 3600))


def _number(stats: dict[str, Any], key: str, kind: type = float) -> Any:
    try:
        return kind(stats.get(key) or 0)
    except (TypeError, ValueError):
        return kind(0)


def _sample(node_pk: int, stats: dict[str, Any], start: datetime) -> NodeStatsSample:
    # Values are clamped here; the node is a row the caller has (no per-row lookup query).
    return NodeStatsSample(
        node_id=node_pk,
        taken_at=start,
        cpu_percent=max(0.0, min(100.0, _number(stats, "cpu_percent"))),
        memory_percent=max(0.0, min(100.0, _number(stats, "memory_percent"))),
        memory_used=max(0, _number(stats, "memory_used", int)),
        memory_total=max(0, _number(stats, "memory_total", int)),
        active_tasks=max(0, _number(stats, "active_tasks", int)),
    )


def stats_sample_record(*, node: Node, stats: dict[str, Any], now: datetime) -> bool:
    """Keep the first heartbeat of each bucket; returns whether a sample was written.

    Called from the heartbeat flush. A bucket already sampled costs one indexed lookup;
    a new bucket writes one row and drops the node's samples older than the history window,
    so each node keeps at most history / bucket + 1 rows.
    """
    bucket = stats_bucket_seconds()
    start = datetime.fromtimestamp(int(now.timestamp()) // bucket * bucket, tz=now.tzinfo)
    if NodeStatsSample.objects.filter(node=node, taken_at=start).exists():
        return False
    sample = _sample(node.pk, stats, start)
    NodeStatsSample.objects.bulk_create([sample], ignore_conflicts=True)
    NodeStatsSample.objects.filter(
        node=node, taken_at__lt=now - timedelta(seconds=stats_history_seconds())
    ).delete()
    return True


_SAMPLED_SQL = (
    f"SELECT {rawsql.column(NodeStatsSample, 'node')}"  # noqa: S608  # names from the model only
    f" FROM {rawsql.table(NodeStatsSample)} WHERE taken_at = %s"
    f" AND {rawsql.column(NodeStatsSample, 'node')} IN"
)


def stats_samples_record_many(*, samples: list[tuple[int, dict[str, Any]]], now: datetime) -> int:
    """Batch form of `stats_sample_record` for (node pk, stats) pairs: three queries whatever
    the count."""
    if not samples:
        return 0
    bucket = stats_bucket_seconds()
    start = datetime.fromtimestamp(int(now.timestamp()) // bucket * bucket, tz=now.tzinfo)
    pks = [pk for pk, _ in samples]
    # By hand: the ORM prepares each IN value in Python.
    taken_at = rawsql.to_db(NodeStatsSample, "taken_at", start)
    sampled = {pk for (pk,) in rawsql.rows_in(_SAMPLED_SQL, pks, before=[taken_at])}
    rows = [_sample(pk, stats, start) for pk, stats in samples if pk not in sampled]
    if not rows:
        return 0
    NodeStatsSample.objects.bulk_create(rows, ignore_conflicts=True)
    NodeStatsSample.objects.filter(
        node_id__in=[row.node_id for row in rows],
        taken_at__lt=now - timedelta(seconds=stats_history_seconds()),
    ).delete()
    return len(rows)
