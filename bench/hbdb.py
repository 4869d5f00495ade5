"""Database time the hub spends per heartbeat: the batched flush plus the queued-work check.

Runs the mesh's own services (`heartbeat_flush`, `nodes_with_queued_tasks`) against the bench
database, in one process pinned like the server, after the runmesh under load has stopped. As
in runmesh, the flush runs in the DB thread and its live frames are sent afterwards by the
event loop (`events.collect_frames`); that send is reported on its own (`frames_us_per_hb`).
usage: DJANGO_SETTINGS_MODULE=bench.settings python -m bench.hbdb [--nodes 1000] [--reps 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.nodesim import stats_pb  # noqa: E402
from mesh import events  # noqa: E402
from mesh.grpc.messages import stats_dict  # noqa: E402
from mesh.models import Node, NodeStatus  # noqa: E402
from mesh.services import heartbeat_flush, tasks_claim_for_delivery  # noqa: E402
from mesh.services.journal import nodes_with_queued_tasks  # noqa: E402

CONNECTION = "bench-hbdb"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    if os.environ.get("PIN_CPU"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(os.environ["PIN_CPU"])})
    ids = list(
        Node.objects.filter(node_id__startswith="bench-")
        .order_by("node_id")
        .values_list("node_id", flat=True)[: a.nodes]
    )
    Node.objects.filter(node_id__in=ids).update(
        connection_id=CONNECTION, status=NodeStatus.ONLINE, last_seen_at=timezone.now()
    )
    flush, frames, claim, queued = [], [], [], []
    for _ in range(a.reps):
        beats = {nid: (CONNECTION, stats_dict(stats_pb())) for nid in ids}
        t0 = time.perf_counter()
        with events.collected() as collected:
            heartbeat_flush(beats=beats)
        flush.append((time.perf_counter() - t0) / len(ids))
        t0 = time.perf_counter()
        async_to_sync(events.asend_many)(collected)
        frames.append((time.perf_counter() - t0) / len(ids))
        t0 = time.perf_counter()
        nodes_with_queued_tasks(node_ids=ids)  # once per flush, for every beating node
        queued.append((time.perf_counter() - t0) / len(ids))
        t0 = time.perf_counter()
        for nid in ids[:200]:  # now only on a doorbell or when the flush found queued work
            tasks_claim_for_delivery(node_id=nid, connection_id=CONNECTION)
        claim.append((time.perf_counter() - t0) / 200)
    Node.objects.filter(node_id__in=ids).update(connection_id="", status=NodeStatus.OFFLINE)
    f, q = statistics.median(flush) * 1e6, statistics.median(queued) * 1e6
    c = statistics.median(claim) * 1e6
    out = {
        "test": "hb_db",
        "nodes": len(ids),
        "flush_us_per_hb": round(f, 1),
        "frames_us_per_hb": round(statistics.median(frames) * 1e6, 1),
        "queued_check_us_per_hb": round(q, 1),
        "claim_us_per_doorbell": round(c, 1),
        "db_us_per_hb": round(f + q, 1),
    }
    print(json.dumps(out))


def run_under_loop() -> None:
    """Run `main` in a worker thread under an event loop, as runmesh runs its services, so the
    after-commit frames reach the long-lived channel layer of that loop."""
    import asyncio

    from asgiref.sync import sync_to_async

    async def go() -> None:
        await sync_to_async(main, thread_sensitive=True)()

    asyncio.run(go())


if __name__ == "__main__":
    run_under_loop()
