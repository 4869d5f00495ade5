"""WebSocket load through the project's NodeConsumer (`/ws/nodes/{id}/`), bounded in count and time.

  fanout  a simulated node streams output lines over gRPC into `serve`; 100 authenticated
          watchers receive them (closed loop, then bursts); same JSON shape as the bare
          baselines' ws_bench.py fanout
  idle    --conns N watcher sockets held open: server RSS per connection
  echo    request/reply through the consumer (an unknown frame type answered by an error frame)
usage: python -m bench.wsbench MODE --http PORT --grpc HOST:PORT --seed SEED.json [options]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from typing import Any

from websockets.asyncio.client import connect

from bench.httpload import Conn
from bench.nodesim import SimNode, lat_summary, load_seed, proc_stats
from mesh.agent.pb import mesh_pb2


async def tickets(port: int, token: str, count: int) -> list[str]:
    c = Conn("127.0.0.1", port)
    out = []
    for _ in range(count):
        status, body = await c.request("POST", "/api/v1/ws-ticket/", token, b"{}")
        if status != 201:
            raise RuntimeError(f"ws-ticket: {status} {body[:200]!r}")
        out.append(json.loads(body)["ticket"])
    await c.close()
    return out


async def open_watchers(a: argparse.Namespace, node_id: str, count: int) -> list[Any]:
    token = load_seed(a.seed)["tokens"]["admin"]
    socks = []
    for b in range(0, count, 50):
        batch = await tickets(a.http, token, min(50, count - b))
        socks += await asyncio.gather(
            *[
                connect(
                    f"ws://127.0.0.1:{a.http}/ws/nodes/{node_id}/?ticket={t}",
                    origin=f"http://127.0.0.1:{a.http}",  # type: ignore[arg-type]
                    compression=None,
                    max_queue=None,
                    max_size=None,
                    open_timeout=60,
                )
                for t in batch
            ]
        )
    for s in socks:  # the snapshot frame
        first = json.loads(await asyncio.wait_for(s.recv(), timeout=20))
        if first.get("type") != "node.snapshot":
            raise RuntimeError(f"first frame {first.get('type')}")
    return socks


async def fanout(a: argparse.Namespace) -> dict[str, Any]:
    seed = load_seed(a.seed)
    node_id, secret = seed["nodes"][a.node]
    sim = SimNode(a.grpc, node_id, secret)
    await sim.connect()
    subs = await open_watchers(a, node_id, a.subs)
    # a task on the node, started through the REST API like a user would
    c = Conn("127.0.0.1", a.http)
    body = json.dumps({"command": "tail -f log", "timeout": 600}).encode()
    status, data = await c.request(
        "POST", f"/api/v1/nodes/{node_id}/tasks/", seed["tokens"]["admin"], body
    )
    await c.close()
    if status != 201:
        raise RuntimeError(f"POST task: {status} {data[:200]!r}")
    assign = await sim.next_assign()
    tid = assign.task_id
    await sim.send(task_started=mesh_pb2.TaskStarted(task_id=tid))
    got = [0] * a.subs
    lat: list[float] = []
    cond = asyncio.Condition()
    pad = "o" * 200

    async def reader(i: int) -> None:
        with contextlib.suppress(Exception):
            async for m in subs[i]:
                frame = json.loads(m)
                if frame.get("type") != "task.output":
                    continue
                now = time.perf_counter_ns()
                for line in frame.get("data", "").splitlines():
                    seq, ts, _ = line.split(" ", 2)
                    if int(seq) >= 0:
                        lat.append((now - int(ts)) / 1e9)
                    got[i] += 1
                async with cond:
                    cond.notify_all()

    readers = [asyncio.create_task(reader(i)) for i in range(a.subs)]

    async def wait_all(target: int, timeout: float) -> bool:
        async def pred() -> None:
            async with cond:
                await cond.wait_for(lambda: min(got) >= target)

        try:
            await asyncio.wait_for(pred(), timeout)
            return True
        except TimeoutError:
            return False

    seq = [0]

    async def send_line(k: int) -> None:
        seq[0] += 1
        text = f"{k} {time.perf_counter_ns()} {pad}\n"
        await sim.send(
            task_output=mesh_pb2.TaskOutput(
                task_id=tid, seq=seq[0], stream=mesh_pb2.STDOUT, data=text.encode()
            )
        )

    await send_line(-1)
    await wait_all(1, 10)
    sent = 1
    lat.clear()
    round_lat, timeouts = [], 0
    for r in range(a.rounds):
        t0 = time.perf_counter()
        await send_line(r)
        sent += 1
        timeouts += not await wait_all(sent, 5)
        round_lat.append(time.perf_counter() - t0)
    per_msg = lat_summary(lat)
    lat.clear()
    t0 = time.perf_counter()
    incomplete = 0
    for _ in range(a.bursts):
        for k in range(a.burst):
            await send_line(k)
        sent += a.burst
        incomplete += not await wait_all(sent, 15)
    el = time.perf_counter() - t0
    delivered = sum(got) - a.subs * (1 + a.rounds)
    expected = a.subs * a.burst * a.bursts
    burst_lat = lat_summary(lat)
    for t in readers:
        t.cancel()
    await sim.send(task_result=mesh_pb2.TaskResult(task_id=tid, outcome=mesh_pb2.SUCCEEDED))
    await asyncio.sleep(0.3)
    await asyncio.gather(*[s.close() for s in subs], return_exceptions=True)
    await sim.close()
    return {
        "test": "hub_ws_fanout",
        "subs": a.subs,
        "closed_loop": {
            "rounds": a.rounds,
            "timeouts": timeouts,
            "all_delivered": lat_summary(round_lat),
            "per_delivery": per_msg,
        },
        "bursts": {
            "burst": a.burst,
            "bursts": a.bursts,
            "expected": expected,
            "delivered": delivered,
            "lost": expected - delivered,
            "incomplete_bursts": incomplete,
            "deliveries_per_s": round(delivered / el, 1),
            "per_delivery": burst_lat,
        },
    }


async def idle(a: argparse.Namespace) -> dict[str, Any]:
    seed = load_seed(a.seed)
    node_id = seed["nodes"][a.node][0]
    warm = await open_watchers(a, node_id, 10)  # lazily-initialised state not counted
    await asyncio.gather(*[s.close() for s in warm], return_exceptions=True)
    # The HTTP path's own growth (worker threads, allocator arenas) levels off after a few
    # thousand requests whatever they are; run as many ticket requests as the measured phase
    # will, so what is counted is the sockets (the bare consumer needs no ticket).
    await tickets(a.http, seed["tokens"]["admin"], a.conns)
    await asyncio.sleep(1.0)
    s0 = proc_stats(a.server_pid)
    socks = await open_watchers(a, node_id, a.conns)
    await asyncio.sleep(2.0)
    s1 = proc_stats(a.server_pid)
    await asyncio.gather(*[s.close() for s in socks], return_exceptions=True)
    return {
        "test": "hub_ws_idle",
        "conns": a.conns,
        "server_rss_mb": [round(s0["rss_mb"], 1), round(s1["rss_mb"], 1)],
        "server_kb_per_conn": round((s1["rss_mb"] - s0["rss_mb"]) * 1024 / a.conns, 1),
        "threads": [s0["threads"], s1["threads"]],
    }


async def echo(a: argparse.Namespace) -> dict[str, Any]:
    seed = load_seed(a.seed)
    node_id = seed["nodes"][a.node][0]
    conns = await open_watchers(a, node_id, a.conns)
    msg = json.dumps({"type": "ping", "seq": 1, "pad": "x" * 40})
    lat: list[float] = []
    counts = [0] * a.conns
    deadline = time.perf_counter() + a.secs

    async def worker(i: int) -> None:
        c = conns[i]
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await c.send(msg)
            while json.loads(await c.recv()).get("type") != "error":
                pass
            lat.append(time.perf_counter() - t0)
            counts[i] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*[worker(i) for i in range(a.conns)])
    el = time.perf_counter() - t0
    await asyncio.gather(*[c.close() for c in conns], return_exceptions=True)
    return {
        "test": "hub_ws_echo",
        "conns": a.conns,
        "msgs_per_s": round(sum(counts) / el, 1),
        **lat_summary(lat),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fanout", "idle", "echo"])
    ap.add_argument("--http", type=int, required=True)
    ap.add_argument("--grpc", default="")
    ap.add_argument("--seed", required=True)
    ap.add_argument("--node", type=int, default=-2)
    ap.add_argument("--subs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--bursts", type=int, default=10)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--secs", type=float, default=5.0)
    ap.add_argument("--server-pid", type=int, default=0)
    a = ap.parse_args()
    if os.environ.get("PIN_CPU"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(os.environ["PIN_CPU"])})
    fn = {"fanout": fanout, "idle": idle, "echo": echo}[a.mode]
    print(json.dumps(asyncio.run(asyncio.wait_for(fn(a), timeout=300))), flush=True)


if __name__ == "__main__":
    main()
