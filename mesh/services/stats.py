"""Node stats: the one sanitiser of what nodes report (`stats_clean`), and the history writes
(downsample heartbeats to one sample per bucket, prune the old)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from mesh import store
from mesh.models import Node, NodeStatsSample

#: Bounds of what a node may report; values outside are clamped, non-numbers dropped.
MAX_CORES = 1024
MAX_LOAD_VALUES = 3  # 1, 5, 15 minutes
MAX_MEMORY_BYTES = 1 << 52  # 4 PiB: above any machine, below JSON's exact-integer limit
MAX_FREQ_MHZ = 1_000_000.0
MAX_LOAD = 1_000_000.0
MAX_ACTIVE_TASKS = 100_000

_FLOATS = {"cpu_percent": 100.0, "memory_percent": 100.0, "cpu_freq_mhz": MAX_FREQ_MHZ}
_INTS = {
    "cpu_count": MAX_CORES,
    "memory_used": MAX_MEMORY_BYTES,
    "memory_total": MAX_MEMORY_BYTES,
    "memory_available": MAX_MEMORY_BYTES,
    "active_tasks": MAX_ACTIVE_TASKS,
}
_LISTS = {"cpu_per_core": (MAX_CORES, 100.0), "load_avg": (MAX_LOAD_VALUES, MAX_LOAD)}
STATS_KEYS = frozenset([*_FLOATS, *_INTS, *_LISTS])
_isfinite = math.isfinite


def stats_clean(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Node-reported stats made safe to store, broadcast and chart; the one sanitiser.

    A node is not trusted: NaN or infinity would make every JSON write of a batched heartbeat
    flush fail (SQLite's JSON_VALID check, PostgreSQL's json parser), and huge lists or
    numbers cost every viewer. Only known keys are kept; a scalar that is not a finite number
    is dropped, list entries that are not become 0.0; numbers are clamped to [0, bound]; lists
    are cut to their bound. Plausible stats (every heartbeat of a sane agent) are checked in
    about a microsecond and returned as they are.
    """
    if type(raw) is dict and _plausible(raw):
        return raw
    return _clean(raw)


def _plausible(s: dict[str, Any]) -> bool:
    """Cheap test that `s` needs no cleaning (chained comparisons are False for NaN)."""
    g = s.get
    try:
        cores = g("cpu_per_core", ())
        load = g("load_avg", ())
        return (
            s.keys() <= STATS_KEYS
            and bool not in map(type, s.values())  # True passes for 1 below
            and 0.0 <= g("cpu_percent", 0.0) <= 100.0
            and 0.0 <= g("memory_percent", 0.0) <= 100.0
            and 0.0 <= g("cpu_freq_mhz", 0.0) <= MAX_FREQ_MHZ
            and 0 <= g("cpu_count", 0) <= MAX_CORES
            and 0 <= g("memory_used", 0) <= MAX_MEMORY_BYTES
            and 0 <= g("memory_total", 0) <= MAX_MEMORY_BYTES
            and 0 <= g("memory_available", 0) <= MAX_MEMORY_BYTES
            and 0 <= g("active_tasks", 0) <= MAX_ACTIVE_TASKS
            and _plausible_list(cores, MAX_CORES, 100.0)
            and _plausible_list(load, MAX_LOAD_VALUES, MAX_LOAD)
        )
    except TypeError:  # a string, list or None where a number belongs
        return False


def _plausible_list(values: Any, size: int, high: float) -> bool:
    if not values:
        return type(values) in (list, tuple)
    # A NaN can hide from min() and max(), never from sum(); an infinity shows in sum() too.
    return (
        type(values) is list
        and len(values) <= size
        and min(values) >= 0.0
        and max(values) <= high
        and _isfinite(sum(values))
    )


def _number(value: Any, high: float) -> float | None:
    """`value` as a float clamped to [0, high], or None when it is no finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        return high if value > 0 else 0.0
    if not _isfinite(number):
        return None
    return min(max(number, 0.0), high)


def _clean(raw: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        return {}
    clean: dict[str, Any] = {}
    for key, high in _FLOATS.items():
        if (number := _number(raw.get(key), high)) is not None:
            clean[key] = number
    for key, top in _INTS.items():
        if (number := _number(raw.get(key), top)) is not None:
            clean[key] = int(number) if number < top else top
    for key, (size, high) in _LISTS.items():
        values = raw.get(key)
        if isinstance(values, list | tuple):
            clean[key] = [0.0 if (n := _number(v, high)) is None else n for v in values[:size]]
    return clean


def stats_bucket_seconds() -> int:
    return int(getattr(settings, "MESH_STATS_SAMPLE_SECONDS", 30))


def stats_history_seconds() -> int:
    return int(getattr(settings, "MESH_STATS_HISTORY_SECONDS", 3600))


def _sample(node_pk: int, stats: Mapping[str, Any], start: datetime) -> NodeStatsSample:
    # Cleaned here too (callers may pass raw stats); the node is a row the caller has, so
    # there is no per-row lookup query.
    clean = stats_clean(stats)
    return NodeStatsSample(
        node_id=node_pk,
        taken_at=start,
        cpu_percent=clean.get("cpu_percent", 0.0),
        memory_percent=clean.get("memory_percent", 0.0),
        memory_used=clean.get("memory_used", 0),
        memory_total=clean.get("memory_total", 0),
        active_tasks=clean.get("active_tasks", 0),
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


def stats_samples_record_many(*, samples: list[tuple[int, dict[str, Any]]], now: datetime) -> int:
    """Batch form of `stats_sample_record` for (node pk, stats) pairs: three queries whatever
    the count."""
    if not samples:
        return 0
    bucket = stats_bucket_seconds()
    start = datetime.fromtimestamp(int(now.timestamp()) // bucket * bucket, tz=now.tzinfo)
    pks = [pk for pk, _ in samples]
    # By hand: the ORM prepares each IN value in Python.
    sampled = store.stats_sampled_nodes(node_pks=pks, taken_at=start)
    rows = [_sample(pk, stats, start) for pk, stats in samples if pk not in sampled]
    if not rows:
        return 0
    NodeStatsSample.objects.bulk_create(rows, ignore_conflicts=True)
    NodeStatsSample.objects.filter(
        node_id__in=[row.node_id for row in rows],
        taken_at__lt=now - timedelta(seconds=stats_history_seconds()),
    ).delete()
    return len(rows)
