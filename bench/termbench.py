"""Terminal benchmarks (issue 21): keystroke echo and bulk output through the hub.

`python -m bench.termbench all [--keys N] [--mb M] [--json FILE]` starts everything it needs in
a temporary directory: a hub (`manage.py serve`, SQLite, in-memory layer) with one real agent,
a bare relay (a WebSocket server that relays each frame over a gRPC bidi stream to an echo
server and back), and a bare local PTY. It measures:

- keystroke echo p50/p95: one key in, its echo out. Bare PTY (write to the master, read the
  echo), bare WS+gRPC relay, and the hub (`terminal.input` over the WebSocket, through the hub,
  the agent and the node's PTY, `terminal.output` back);
- bulk output: `head -c M MB` of a repeated line through a hub terminal, in MB/s, with the hub's
  RSS sampled throughout (flat means the flow control holds), beside the same command read
  straight off a local PTY (the kernel's tty throughput: the machine's ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.livehub import PY, ROOT, BenchHub, free_port, print_result, wait_port


def _pcts(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
        "n": len(ordered),
    }


# ------------------------------------------------------------------------------ bare PTY
def bare_pty(keys: int) -> dict[str, Any]:
    """Echo of a key by the kernel's tty line discipline under `cat`."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - child
        os.execvp("cat", ["cat"])  # noqa: S606  # a fixed program, no shell
    samples = []
    try:
        time.sleep(0.2)
        for i in range(keys):
            key = bytes([97 + i % 26])
            start = time.perf_counter()
            os.write(fd, key)
            got = b""
            while key not in got:
                got += os.read(fd, 1024)
            samples.append(time.perf_counter() - start)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return _pcts(samples)


def bare_pty_bulk(megabytes: int) -> dict[str, Any]:
    """The same bulk command as `hub_bulk`, read straight off a local PTY: the kernel's tty
    throughput on this machine now, the ceiling for any terminal path."""
    total = megabytes * 1_000_000
    command = f"stty -echo; yes {'x' * 99} | head -c {total}"
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - child
        os.execvp("bash", ["bash", "-c", command])  # noqa: S606  # a fixed command line
    received = 0
    start = time.perf_counter()
    try:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child ended
                break
            if not data:
                break
            received += len(data)
    finally:
        os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    return {"received_bytes": received, "mb_per_s": round(total / 1_000_000 / elapsed, 1)}


# ------------------------------------------------------------------------- bare relay
def _identity(data: bytes) -> bytes:
    return data


async def _relay_server(ws_port: int, grpc_port: int) -> None:
    import grpc
    import websockets

    async def echo(requests: Any, context: Any) -> Any:
        async for item in requests:
            yield item

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo",
        {"Echo": grpc.stream_stream_rpc_method_handler(echo, _identity, _identity)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    method = channel.stream_stream("/bench.Echo/Echo", _identity, _identity)

    async def relay(ws: Any) -> None:
        call = method()

        async def down() -> None:
            async for item in call:
                await ws.send(item.decode())

        task = asyncio.create_task(down())
        async for frame in ws:
            await call.write(frame.encode() if isinstance(frame, str) else frame)
        await call.done_writing()
        task.cancel()

    async with websockets.serve(relay, "127.0.0.1", ws_port):
        await asyncio.Future()


async def _relay_client(ws_port: int, keys: int) -> dict[str, Any]:
    import websockets

    samples = []
    async with websockets.connect(f"ws://127.0.0.1:{ws_port}/") as ws:
        for i in range(keys):
            key = json.dumps({"type": "terminal.input", "data": chr(97 + i % 26)})
            start = time.perf_counter()
            await ws.send(key)
            await ws.recv()
            samples.append(time.perf_counter() - start)
    return _pcts(samples)


def bare_relay(keys: int) -> dict[str, Any]:
    ws_port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(  # noqa: S603  # our own module
        [PY, "-m", "bench.termbench", "relay", "--ws", str(ws_port), "--grpc", str(grpc_port)],
        cwd=ROOT,
    )
    try:
        wait_port(ws_port)
        return asyncio.run(_relay_client(ws_port, keys))
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------- the hub
async def _socket(hub: BenchHub) -> Any:
    """The terminal WebSocket of node `bench`, as the admin."""
    import websockets
    from websockets.typing import Origin

    answer = await asyncio.to_thread(hub.call, "POST", "/api/v1/ws-ticket/", json={})
    url = f"ws://127.0.0.1:{hub.http}/ws/nodes/bench/terminal/?ticket={answer.json()['ticket']}"
    origin = Origin(f"http://127.0.0.1:{hub.http}")
    return await websockets.connect(url, origin=origin, max_size=None)


async def _frames_until(ws: Any, predicate: Any) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.recv())
        if predicate(frame):
            return frame


async def hub_keys(hub: BenchHub, keys: int) -> dict[str, Any]:
    ws = await _socket(hub)
    await ws.send(json.dumps({"type": "terminal.open", "cols": 120, "rows": 40}))
    await _frames_until(ws, lambda f: f["type"] == "terminal.opened")
    await ws.send(json.dumps({"type": "terminal.input", "data": "cat\n"}))
    await asyncio.sleep(1.0)  # the prompt and cat start; not measured
    samples = []
    for i in range(keys):
        key = chr(97 + i % 26)
        start = time.perf_counter()
        await ws.send(json.dumps({"type": "terminal.input", "data": key}))
        await _frames_until(
            ws, lambda f, key=key: f["type"] == "terminal.output" and key in f["data"]
        )
        samples.append(time.perf_counter() - start)
    await ws.send(json.dumps({"type": "terminal.close"}))
    await ws.close()
    return _pcts(samples)


async def hub_bulk(hub: BenchHub, megabytes: int) -> dict[str, Any]:
    ws = await _socket(hub)
    process = psutil.Process(hub.hub.pid)
    await ws.send(json.dumps({"type": "terminal.open", "cols": 200, "rows": 50}))
    await _frames_until(ws, lambda f: f["type"] == "terminal.opened")
    await ws.send(json.dumps({"type": "terminal.input", "data": "stty -echo\n"}))
    await asyncio.sleep(1.0)
    total = megabytes * 1_000_000
    line = "x" * 99
    command = f"yes {line} | head -c {total}; echo; echo bulk-done-$((1+1))\n"
    rss: list[int] = [process.memory_info().rss]
    received = 0
    start = time.perf_counter()
    await ws.send(json.dumps({"type": "terminal.input", "data": command}))
    last_sample = start
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "terminal.output":
            received += len(frame["data"])
            if "bulk-done-2" in frame["data"]:
                break
        elif frame["type"] == "resync":
            raise RuntimeError("the client fell behind (resync)")
        now = time.perf_counter()
        if now - last_sample > 0.25:
            rss.append(process.memory_info().rss)
            last_sample = now
    elapsed = time.perf_counter() - start
    rss.append(process.memory_info().rss)
    await ws.send(json.dumps({"type": "terminal.close"}))
    await ws.close()
    return {
        "megabytes": megabytes,
        "received_bytes": received,
        "seconds": round(elapsed, 2),
        "mb_per_s": round(total / 1_000_000 / elapsed, 1),
        "hub_rss_start_mb": round(rss[0] / 2**20, 1),
        "hub_rss_max_mb": round(max(rss) / 2**20, 1),
        "hub_rss_end_mb": round(rss[-1] / 2**20, 1),
        "hub_rss_growth_mb": round((max(rss) - rss[0]) / 2**20, 1),
    }


def run_all(keys: int, megabytes: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "bare_pty": bare_pty(keys),
        "bare_relay": bare_relay(keys),
        "bare_pty_bulk": bare_pty_bulk(megabytes),
    }
    work = Path(tempfile.mkdtemp(prefix="termbench-"))
    hub = BenchHub(work)
    try:
        hub.start({"bench": work}, agent_log="agent.log")
        out["hub_echo"] = asyncio.run(hub_keys(hub, keys))
        out["hub_bulk"] = asyncio.run(hub_bulk(hub, megabytes))
    finally:
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)
    out["echo_ratio_vs_relay"] = round(
        out["hub_echo"]["p50_ms"] / max(out["bare_relay"]["p50_ms"], 1e-6), 2
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.termbench")
    sub = parser.add_subparsers(dest="cmd", required=True)
    everything = sub.add_parser("all")
    everything.add_argument("--keys", type=int, default=200)
    everything.add_argument("--mb", type=int, default=100)
    everything.add_argument("--json", default="")
    relay = sub.add_parser("relay")
    relay.add_argument("--ws", type=int, required=True)
    relay.add_argument("--grpc", type=int, required=True)
    args = parser.parse_args()
    if args.cmd == "relay":
        asyncio.run(_relay_server(args.ws, args.grpc))
        return
    result = run_all(args.keys, args.mb)
    print_result(result, args.json)


if __name__ == "__main__":
    main()
