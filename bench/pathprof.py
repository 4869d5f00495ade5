"""Profile the hub's hot services in-process (cProfile) for the RESULTS.md profile summaries.

Runs the mesh's own services against the bench database after the load phases: the heartbeat
flush of 1,000 beats, 200 output chunks of 64 KiB, and 50 dispatch -> claim -> finish cycles.
usage: DJANGO_SETTINGS_MODULE=bench.settings python -m bench.pathprof
Prints one JSON object: per path, the wall time per call and the top functions by cumulative time.
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import os
import pstats
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from accounts.models import User  # noqa: E402
from bench.nodesim import stats_pb  # noqa: E402
from mesh import events  # noqa: E402
from mesh.grpc.messages import stats_dict  # noqa: E402
from mesh.models import Node, NodeStatus  # noqa: E402
from mesh.services import (  # noqa: E402
    heartbeat_flush,
    task_dispatch,
    task_finish,
    tasks_claim_for_delivery,
)
from mesh.services.output import OutputChunk, output_store_batch  # noqa: E402

CONNECTION = "bench-prof"
SKIP = ("<frozen", "cProfile", "pathprof.py", "{built-in method builtins.exec}")


def top(prof: cProfile.Profile, calls: int, n: int = 14) -> list[list[Any]]:
    """The n functions with the most cumulative time (ms per call of the profiled path)."""
    rows = []
    for (path, line, func), (_cc, nc, _tt, ct, _callers) in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        where = f"{path}:{line}"
        if any(s in where or s in func for s in SKIP) or path == "~":
            continue
        short = path.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append([f"{short}:{func}", nc, round(ct * 1000 / calls, 3)])
    rows.sort(key=lambda r: -r[2])
    return rows[:n]


def profile(fn: Callable[[], Any], calls: int) -> dict[str, Any]:
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    fn()
    prof.disable()
    wall = time.perf_counter() - t0
    return {"calls": calls, "ms_per_call_profiled": round(wall * 1000 / calls, 3),
            "top_ms_per_call": top(prof, calls)}  # fmt: skip


def main() -> None:
    if os.environ.get("PIN_CPU"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(os.environ["PIN_CPU"])})
    admin = User.objects.get(email="admin@bench.local")
    nodes = list(Node.objects.filter(node_id__startswith="bench-").order_by("node_id")[:1000])
    ids = [n.node_id for n in nodes]
    Node.objects.filter(node_id__in=ids).update(connection_id=CONNECTION, status=NodeStatus.ONLINE)
    out: dict[str, Any] = {"test": "pathprof"}
    beats = {nid: (CONNECTION, stats_dict(stats_pb())) for nid in ids}

    def flush() -> None:
        with events.collected():  # as in runmesh: the loop sends the frames, not this thread
            heartbeat_flush(beats=beats)

    out["heartbeat_flush (1 call = 1 beat)"] = profile(flush, len(ids))
    node = nodes[-1]
    task = task_dispatch(
        actor=admin, node=node, kind="shell", payload={"command": "cat big"}, timeout=600.0
    )
    tasks_claim_for_delivery(node_id=node.node_id, connection_id=CONNECTION)
    chunk = b"d" * 65535 + b"\n"

    def outputs() -> None:
        """As the stream's output pump does: batches of 32 chunks, held past the cap."""
        held: list[OutputChunk] = []
        for first in range(1, 201, 32):
            chunks = [
                OutputChunk(str(task.pk), seq, "stdout", chunk)
                for seq in range(first, min(first + 32, 201))
            ]
            stored = output_store_batch(
                node_id=node.node_id, chunks=held + chunks, hold=True, announce=False
            )
            held = stored.held
        output_store_batch(node_id=node.node_id, chunks=held, hold=False, announce=False)

    out["output batches (1 call = one 64 KiB chunk)"] = profile(outputs, 200)
    task_finish(node_id=node.node_id, task_id=str(task.pk), outcome="SUCCEEDED", exit_code=0)

    def cycles() -> None:
        for _ in range(50):
            t = task_dispatch(
                actor=admin, node=node, kind="shell", payload={"command": "true"}, timeout=30.0
            )
            tasks_claim_for_delivery(node_id=node.node_id, connection_id=CONNECTION)
            task_finish(node_id=node.node_id, task_id=str(t.pk), outcome="SUCCEEDED", exit_code=0)
            tasks_claim_for_delivery(node_id=node.node_id, connection_id=CONNECTION)

    out["dispatch + claim + finish + claim (1 call = one task)"] = profile(cycles, 50)
    Node.objects.filter(node_id__in=ids).update(connection_id="", status=NodeStatus.OFFLINE)
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
