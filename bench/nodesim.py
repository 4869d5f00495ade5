"""A node simulator speaking the real node protocol, so one process can stand in for many nodes.

Each simulated node has its own gRPC channel (its own TCP connection), authenticates with its
credential, sends Hello, heartbeats with stats, and answers TaskAssign with TaskStarted /
TaskOutput / TaskResult like the agent does. Every loop is bounded in count and time.

usage: python -m bench.nodesim MODE --address HOST:PORT --seed SEED.json [options]
  idle      N nodes heart-beating every --interval s with jitter for --hold s; server RSS,
            threads, CPU per heartbeat, heartbeat-probe ack latency, a muted node going offline
  dispatch  a no-op task handed to task_dispatch, assigned over the open stream, acknowledged
  upload    --mib MiB of output in --chunk byte TaskOutput chunks through the real handler
  push      --files files of --size bytes pushed hub -> node (file_push, FileChunk stream)
  agent     one node that runs every task it gets as a no-op (for the REST round trip)
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any

import grpc

from mesh.agent.pb import mesh_pb2, mesh_pb2_grpc

OPTIONS = [
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (same definition as the baselines' common.pct)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def lat_summary(seconds: list[float]) -> dict[str, Any]:
    us = [x * 1e6 for x in seconds]
    return {
        "n": len(us),
        "p50_us": round(pct(us, 50), 1),
        "p90_us": round(pct(us, 90), 1),
        "p99_us": round(pct(us, 99), 1),
        "mean_us": round(statistics.fmean(us), 1) if us else None,
    }


def proc_stats(pid: int) -> dict[str, float]:
    import psutil

    p = psutil.Process(pid)
    t = p.cpu_times()
    return {
        "rss_mb": p.memory_info().rss / 1048576.0,
        "cpu_s": t.user + t.system,
        "threads": p.num_threads(),
    }


def stats_pb(active: int = 0) -> mesh_pb2.NodeStats:
    """Plausible stats, about the size an agent sends."""
    return mesh_pb2.NodeStats(
        cpu_percent=random.uniform(1, 90),
        cpu_per_core=[random.uniform(1, 90) for _ in range(4)],
        cpu_count=4,
        cpu_freq_mhz=2400.0,
        memory_used=3 << 30,
        memory_total=8 << 30,
        memory_available=5 << 30,
        memory_percent=37.5,
        load_avg=[0.4, 0.3, 0.2],
        active_tasks=active,
    )


class SimNode:
    """The node side of one Connect stream (write/read API, one background reader)."""

    def __init__(self, address: str, node_id: str, secret: str, *, auto: bool = False) -> None:
        self.node_id = node_id
        self.secret = secret
        self.channel = grpc.aio.insecure_channel(
            address, options=[*OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
        )
        self.stub = mesh_pb2_grpc.NodeMeshStub(self.channel)
        self.call: Any = None
        self.inbox: asyncio.Queue[mesh_pb2.HubMessage | None] = asyncio.Queue()
        self.waiters: dict[tuple[str, str], asyncio.Future[float]] = {}
        self.auto = auto
        self.reader: asyncio.Task[None] | None = None
        self.assigned = 0

    async def connect(self, held: list[mesh_pb2.HeldTask] | None = None) -> None:
        md = (("cortex-node-id", self.node_id), ("cortex-node-credential", self.secret))
        self.call = self.stub.Connect(metadata=md)
        await self.call.write(
            mesh_pb2.NodeMessage(
                hello=mesh_pb2.Hello(
                    version="bench",
                    platform="linux",
                    hostname=self.node_id,
                    capabilities={"shell": True, "files": True, "browser": False},
                    held_tasks=held or [],
                )
            )
        )
        first = await asyncio.wait_for(self.call.read(), timeout=30)
        if first is grpc.aio.EOF or first.WhichOneof("body") != "welcome":
            raise RuntimeError(f"{self.node_id}: no welcome: {first}")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.call.read()
                if msg is grpc.aio.EOF:
                    return
                kind = msg.WhichOneof("body")
                now = time.perf_counter()
                if kind == "output_ack":
                    key = ("output_ack", msg.output_ack.task_id)
                elif kind == "result_ack":
                    key = ("result_ack", msg.result_ack.task_id)
                else:
                    key = (kind, "")
                fut = self.waiters.pop(key, None)
                if fut is not None and not fut.done():
                    fut.set_result(now)
                if kind == "task_assign":
                    self.assigned += 1
                    if self.auto:
                        asyncio.create_task(self._run_noop(msg.task_assign.task_id))
                    else:
                        self.inbox.put_nowait(msg)
                elif kind in ("output_ack", "file_chunk") and fut is None and not self.auto:
                    self.inbox.put_nowait(msg)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            return
        finally:
            self.inbox.put_nowait(None)

    def expect(self, kind: str, task_id: str = "") -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[(kind, task_id)] = fut
        return fut

    async def next_assign(self, timeout: float = 20.0) -> mesh_pb2.TaskAssign:
        while True:
            msg = await asyncio.wait_for(self.inbox.get(), timeout=timeout)
            if msg is None:
                raise EOFError(f"{self.node_id}: stream ended")
            if msg.WhichOneof("body") == "task_assign":
                return msg.task_assign

    async def send(self, **body: Any) -> None:
        await self.call.write(mesh_pb2.NodeMessage(**body))

    async def _run_noop(self, task_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.send(task_started=mesh_pb2.TaskStarted(task_id=task_id))
            await self.send(
                task_result=mesh_pb2.TaskResult(
                    task_id=task_id, outcome=mesh_pb2.SUCCEEDED, exit_code=0, last_seq=0
                )
            )

    async def close(self) -> None:
        if self.call is not None:
            self.call.cancel()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        await self.channel.close(grace=None)


def load_seed(path: str) -> dict[str, Any]:
    with open(path) as fh:
        return json.load(fh)


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


# ---------------------------------------------------------------------------------------- idle
async def idle(a: argparse.Namespace) -> dict[str, Any]:
    seed = load_seed(a.seed)
    nodes = seed["nodes"][: a.nodes + a.mute + 1]
    probes = seed["probe_tasks"]
    # warm-up on a spare node so lazily-initialised server state is not counted per node
    spare = SimNode(a.address, *nodes[-1])
    await spare.connect()
    for _ in range(5):
        await spare.send(heartbeat=mesh_pb2.Heartbeat(stats=stats_pb()))
    await asyncio.sleep(1.0)
    await spare.close()
    await asyncio.sleep(2.0)
    s0 = proc_stats(a.server_pid)
    sims = [SimNode(a.address, nid, secret) for nid, secret in nodes[: a.nodes + a.mute]]
    t_conn = time.perf_counter()

    async def open_one(sim: SimNode) -> None:
        held = []
        if sim.node_id in probes:
            held = [mesh_pb2.HeldTask(task_id=probes[sim.node_id], last_seq=1)]
        await sim.connect(held)

    for b in range(0, len(sims), 100):
        await asyncio.gather(*[open_one(s) for s in sims[b : b + 100]])
    connect_s = time.perf_counter() - t_conn
    await asyncio.sleep(3.0)
    s1 = proc_stats(a.server_pid)
    beating, muted = sims[: a.nodes], sims[a.nodes :]
    sent = [0]
    ack_lat: list[float] = []
    deadline = time.perf_counter() + a.hold
    errors: list[str] = []

    async def beat(sim: SimNode) -> None:
        probe_task = probes.get(sim.node_id)
        await asyncio.sleep(random.random() * a.interval)
        nxt = time.perf_counter()
        try:
            while nxt <= deadline:
                t0 = time.perf_counter()
                if probe_task:
                    fut = sim.expect("output_ack", probe_task)
                await sim.send(heartbeat=mesh_pb2.Heartbeat(stats=stats_pb()))
                sent[0] += 1
                if probe_task:
                    # A resent chunk is acked without storing: the ack trails the heartbeat.
                    await sim.send(
                        task_output=mesh_pb2.TaskOutput(
                            task_id=probe_task, seq=1, stream=mesh_pb2.STDOUT, data=b""
                        )
                    )
                    t1 = await asyncio.wait_for(fut, timeout=10)
                    ack_lat.append(t1 - t0)
                nxt += a.interval * random.uniform(0.9, 1.1)
                await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
        except Exception as exc:  # recorded, never hidden
            errors.append(f"{sim.node_id}: {exc!r}"[:200])

    w0 = time.perf_counter()
    await asyncio.gather(*[beat(s) for s in beating])
    el = time.perf_counter() - w0
    s2 = proc_stats(a.server_pid)
    offline = None
    if a.check_offline and muted:
        django_setup()
        from asgiref.sync import sync_to_async

        from mesh.models import Node

        def states() -> dict[str, Any]:
            rows = Node.objects.filter(node_id__in=[muted[0].node_id, beating[0].node_id])
            return {n.node_id: [n.status, n.offline_reason] for n in rows}

        got = await sync_to_async(states)()
        offline = {
            "muted_node": got.get(muted[0].node_id),
            "beating_node": got.get(beating[0].node_id),
            "muted_silent_s": round(time.perf_counter() - t_conn, 1),
            "ok": got.get(muted[0].node_id, [""])[0] == "offline"
            and got.get(muted[0].node_id, ["", ""])[1] == "heartbeat_missed"
            and got.get(beating[0].node_id, [""])[0] in ("online", "busy"),
        }
    await asyncio.gather(*[s.close() for s in sims], return_exceptions=True)
    await asyncio.sleep(1.0)
    s3 = proc_stats(a.server_pid)
    cpu = s2["cpu_s"] - s1["cpu_s"]
    return {
        "test": "hub_idle_nodes",
        "nodes": a.nodes,
        "connect_all_s": round(connect_s, 2),
        "server_rss_mb": {
            "before": round(s0["rss_mb"], 1),
            "connected": round(s1["rss_mb"], 1),
            "after_hb": round(s2["rss_mb"], 1),
            "after_close": round(s3["rss_mb"], 1),
        },
        "server_kb_per_node": round((s1["rss_mb"] - s0["rss_mb"]) * 1024 / a.nodes, 1),
        "threads": {"before": s0["threads"], "connected": s1["threads"], "after_hb": s2["threads"]},
        "hb_interval_s": a.interval,
        "hold_s": round(el, 1),
        "hb_sent": sent[0],
        "hb_per_s": round(sent[0] / el, 1),
        "server_cpu_pct": round(100 * cpu / el, 1),
        "server_cpu_us_per_hb": round(1e6 * cpu / max(1, sent[0]), 1),
        "probe_nodes": sum(1 for s in beating if s.node_id in probes),
        "hb_probe_ack": lat_summary(ack_lat),
        "offline_check": offline,
        "errors": errors[:5],
        "error_count": len(errors),
    }


# ------------------------------------------------------------------------------------ dispatch
async def _django_actor() -> tuple[Any, Any]:
    django_setup()
    from asgiref.sync import sync_to_async

    from accounts.models import User

    return sync_to_async, await sync_to_async(lambda: User.objects.get(email="admin@bench.local"))()


async def dispatch(a: argparse.Namespace) -> dict[str, Any]:
    seed = load_seed(a.seed)
    sync_to_async, admin = await _django_actor()
    from cortex.patches.asgiref_loops import adopt_running_loop
    from mesh.models import Node
    from mesh.services import task_dispatch

    adopt_running_loop()  # as the ASGI server's loop is (`cortex.asgi`): doorbells go meanwhile
    nid, secret = seed["nodes"][a.node]
    node = await sync_to_async(lambda: Node.objects.get(node_id=nid))()
    sim = SimNode(a.address, nid, secret)
    await sim.connect()
    run_dispatch = sync_to_async(
        lambda: task_dispatch(
            actor=admin, node=node, kind="shell", payload={"command": "true"}, timeout=30.0
        )
    )
    to_assign: list[float] = []
    to_ack: list[float] = []
    in_service: list[float] = []
    deadline = time.perf_counter() + a.secs
    for i in range(a.warmup + a.n):
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        task = await run_dispatch()
        t_svc = time.perf_counter()
        assign = await sim.next_assign()
        t1 = time.perf_counter()
        if assign.task_id != str(task.pk):
            raise RuntimeError(f"assigned {assign.task_id}, dispatched {task.pk}")
        ack = sim.expect("result_ack", assign.task_id)
        await sim.send(
            task_result=mesh_pb2.TaskResult(
                task_id=assign.task_id, outcome=mesh_pb2.SUCCEEDED, exit_code=0
            )
        )
        t2 = await asyncio.wait_for(ack, timeout=20)
        if i >= a.warmup:
            in_service.append(t_svc - t0)
            to_assign.append(t1 - t0)
            to_ack.append(t2 - t0)
    await sim.close()
    return {
        "test": "hub_dispatch",
        "dispatch_to_ack": lat_summary(to_ack),
        "dispatch_to_assign": lat_summary(to_assign),
        "task_dispatch_call": lat_summary(in_service),
    }


# -------------------------------------------------------------------------------------- upload
async def upload(a: argparse.Namespace) -> dict[str, Any]:
    seed = load_seed(a.seed)
    sync_to_async, admin = await _django_actor()
    from channels.layers import get_channel_layer
    from django.conf import settings

    from mesh import events
    from mesh.models import Node, Task
    from mesh.services import task_dispatch

    nid, secret = seed["nodes"][a.node]
    node = await sync_to_async(lambda: Node.objects.get(node_id=nid))()
    sim = SimNode(a.address, nid, secret)
    await sim.connect()
    layer = get_channel_layer()
    assert layer is not None
    watch = await layer.new_channel()
    await layer.group_add(events.group_name(events.NODE_CONSOLE_GROUP, node_id=nid), watch)
    frames = [0]

    async def watcher() -> None:
        while True:
            msg = await layer.receive(watch)
            if msg.get("type") == events.TASK_OUTPUT:
                frames[0] += 1

    wtask = asyncio.create_task(watcher())
    nchunks = (a.mib << 20) // a.chunk
    data = b"d" * (a.chunk - 1) + b"\n"
    runs = []
    for _ in range(a.reps):
        frames[0] = 0
        task = await sync_to_async(
            lambda: task_dispatch(
                actor=admin, node=node, kind="shell", payload={"command": "cat big"}, timeout=600.0
            )
        )()
        assign = await sim.next_assign()
        tid = assign.task_id
        await sim.send(task_started=mesh_pb2.TaskStarted(task_id=tid))
        acked = [0]
        progressed = asyncio.Event()

        async def acks(tid: str = tid, acked: list[int] = acked, ev: asyncio.Event = progressed):
            while acked[0] < nchunks:
                msg = await sim.inbox.get()
                if msg is None:
                    return
                if msg.WhichOneof("body") == "output_ack" and msg.output_ack.task_id == tid:
                    acked[0] = max(acked[0], msg.output_ack.seq)
                    ev.set()

        ack_task = asyncio.create_task(acks())
        t0 = time.perf_counter()
        deadline = t0 + a.secs
        for seq in range(1, nchunks + 1):
            while seq - acked[0] > a.window:
                progressed.clear()
                await asyncio.wait_for(progressed.wait(), timeout=30)
            if time.perf_counter() > deadline:
                break
            await sim.send(
                task_output=mesh_pb2.TaskOutput(
                    task_id=tid, seq=seq, stream=mesh_pb2.STDOUT, data=data
                )
            )
        await asyncio.wait_for(ack_task, timeout=60)
        el = time.perf_counter() - t0
        done = sim.expect("result_ack", tid)
        await sim.send(
            task_result=mesh_pb2.TaskResult(
                task_id=tid, outcome=mesh_pb2.SUCCEEDED, exit_code=0, last_seq=acked[0]
            )
        )
        await asyncio.wait_for(done, timeout=20)
        await asyncio.sleep(0.5)
        row = await sync_to_async(
            lambda tid=tid: Task.objects.values("output_bytes", "stored_bytes", "last_seq").get(
                pk=tid
            )
        )()
        runs.append(
            {
                "MBps": round(acked[0] * a.chunk / 1e6 / el, 1),
                "chunks_acked": acked[0],
                "seconds": round(el, 2),
                "stored_bytes": row["stored_bytes"],
                "output_bytes": row["output_bytes"],
                "within_cap": row["stored_bytes"] <= int(settings.MESH_OUTPUT_CAP_BYTES) + a.chunk,
                "watcher_frames": frames[0],
            }
        )
        del task
    wtask.cancel()
    await sim.close()
    return {
        "test": "hub_output_upload",
        "mib": a.mib,
        "chunk": a.chunk,
        "window": a.window,
        "up_MBps_median": statistics.median(r["MBps"] for r in runs),
        "runs": runs,
    }


# ---------------------------------------------------------------------------------------- push
class _Incoming:
    """One push as the node sees it: chunks in order, hashed, checked against the assign."""

    def __init__(self, assign: mesh_pb2.TaskAssign) -> None:
        payload = json.loads(assign.payload_json)
        self.size, self.sha256 = payload["size"], payload["sha256"]
        self.digest = hashlib.sha256()
        self.received = 0

    def take(self, chunk: mesh_pb2.FileChunk) -> bool:
        """Add a chunk; True at eof once size and sha256 match (raises on any mismatch)."""
        if chunk.offset != self.received:
            raise RuntimeError(f"chunk {chunk.task_id}@{chunk.offset}, expected @{self.received}")
        self.digest.update(chunk.data)
        self.received += len(chunk.data)
        if not chunk.eof:
            return False
        if (self.received, self.digest.hexdigest()) != (self.size, self.sha256):
            raise RuntimeError(f"push {chunk.task_id}: size or sha256 mismatch")
        return True


async def push(a: argparse.Namespace) -> dict[str, Any]:
    """Files staged with `file_push` from a real file, streamed as FileChunks, checked by hash.

    The files are pushed one after another as a client uploading several files would: each is
    staged and dispatched as soon as the previous one is, while the node receives.
    """
    seed = load_seed(a.seed)
    sync_to_async, admin = await _django_actor()
    from cortex.patches.asgiref_loops import adopt_running_loop
    from mesh import events
    from mesh.models import Node
    from mesh.services import file_push

    # As in the ASGI server (`cortex.asgi`): its loop is adopted and a view runs in
    # `sync_to_async`, so the doorbell after each dispatch goes out on that loop meanwhile
    # (from a bare thread, each would open a new loop and a new Redis connection).
    adopt_running_loop()
    await events.asend_many([("bench.warmup", {"type": "bench.warmup"})])  # a server's is warm
    nid, secret = seed["nodes"][a.node]
    node = await sync_to_async(lambda: Node.objects.get(node_id=nid))()
    sim = SimNode(a.address, nid, secret)
    await sim.connect()
    with tempfile.NamedTemporaryFile(prefix="push-src-") as src:
        src.write(os.urandom(a.size))
        src.flush()
        staged: list[float] = []
        marks: list[tuple[str, float]] = []  # when each step happened, for the timeline

        def stage(i: int) -> None:
            t = time.perf_counter()
            with open(src.name, "rb") as fh:
                file_push(actor=admin, node=node, path=f"push-{i}.bin", source=fh, size=a.size)
            staged.append(time.perf_counter() - t)
            marks.append((f"staged {i}", time.perf_counter()))

        async def stage_all() -> int:
            for i in range(a.files):
                if time.perf_counter() > deadline:
                    return i
                await sync_to_async(stage)(i)
            return a.files

        got, incoming = 0, {}
        acks: list[asyncio.Future[float]] = []
        t0 = time.perf_counter()
        deadline = t0 + a.secs
        stager = asyncio.create_task(stage_all())
        while not stager.done() or len(acks) < stager.result():
            waiting = asyncio.ensure_future(sim.inbox.get())
            await asyncio.wait({waiting, stager}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                waiting.cancel()
                continue
            msg = waiting.result()
            if msg is None:
                raise EOFError("stream ended during a push")
            kind = msg.WhichOneof("body")
            if kind == "task_assign":
                incoming[msg.task_assign.task_id] = _Incoming(msg.task_assign)
                marks.append((f"assign {len(marks)}", time.perf_counter()))
            elif kind == "file_chunk" and incoming[msg.file_chunk.task_id].take(msg.file_chunk):
                tid = msg.file_chunk.task_id
                got += incoming.pop(tid).received
                marks.append(("eof", time.perf_counter()))
                acks.append(sim.expect("result_ack", tid))
                await sim.send(
                    task_result=mesh_pb2.TaskResult(
                        task_id=tid,
                        outcome=mesh_pb2.SUCCEEDED,
                        exit_code=0,
                        result_json=json.dumps({"size": a.size}).encode(),
                    )
                )
        acked = await asyncio.wait_for(asyncio.gather(*acks), timeout=20)
        el = time.perf_counter() - t0
        marks.extend(("ack", t) for t in acked)
    await sim.close()
    return {
        "test": "hub_file_push",
        "files": len(acks),
        "size": a.size,
        "bytes": got,
        "seconds": round(el, 3),
        "stage_s": round(sum(staged), 3),
        "timeline_ms": [
            f"{name} {1000 * (t - t0):.0f}" for name, t in sorted(marks, key=lambda m: m[1])
        ],
        "down_MBps": round(got / 1e6 / el, 1),
    }


# --------------------------------------------------------------------------------------- agent
async def agent(a: argparse.Namespace) -> dict[str, Any]:
    seed = load_seed(a.seed)
    nid, secret = seed["nodes"][a.node]
    sim = SimNode(a.address, nid, secret, auto=True)
    await sim.connect()
    print("READY", flush=True)
    deadline = time.perf_counter() + a.secs
    with contextlib.suppress(asyncio.CancelledError):
        while time.perf_counter() < deadline and not sim.reader.done():  # type: ignore[union-attr]
            await sim.send(heartbeat=mesh_pb2.Heartbeat(stats=stats_pb()))
            await asyncio.sleep(5.0)
    await sim.close()
    return {"test": "agent", "assigned": sim.assigned}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["idle", "dispatch", "upload", "push", "agent"])
    ap.add_argument("--address", required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--mute", type=int, default=1)
    ap.add_argument("--check-offline", action="store_true")
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--hold", type=float, default=20.0)
    ap.add_argument("--server-pid", type=int, default=0)
    ap.add_argument("--node", type=int, default=-1, help="index of the seeded node to use")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--secs", type=float, default=120.0)
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--size", type=int, default=2 << 20)
    a = ap.parse_args()
    if os.environ.get("PIN_CPU"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(os.environ["PIN_CPU"])})
    fn = {"idle": idle, "dispatch": dispatch, "upload": upload, "push": push, "agent": agent}
    res = asyncio.run(asyncio.wait_for(fn[a.mode](a), timeout=a.hold + a.secs + 240))
    print(json.dumps(res), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
