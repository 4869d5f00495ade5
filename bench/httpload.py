"""A small closed-loop HTTP/1.1 keep-alive load generator (no wrk on the box), bounded in time.

usage: python -m bench.httpload rate --url URL [--token T] [--conns 16] [--secs 5]
       python -m bench.httpload rest --base URL --token T --node NODE_ID [--n 100]
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

from bench.nodesim import lat_summary


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, token: str = "", body: bytes = b""
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        if body:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
            return status, data
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


async def rate(a: argparse.Namespace) -> dict[str, Any]:
    u = urlsplit(a.url)
    path = u.path + (f"?{u.query}" if u.query else "")
    conns = [Conn(u.hostname or "127.0.0.1", u.port or 80) for _ in range(a.conns)]
    for c in conns:  # warm-up, and check the view answers 200
        status, body = await c.request("GET", path, a.token)
        if status != 200:
            raise RuntimeError(f"{a.url}: {status} {body[:200]!r}")
    lat: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + a.secs

    async def worker(c: Conn) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status, _ = await c.request("GET", path, a.token)
            lat.append(time.perf_counter() - t0)
            errors[0] += status != 200

    t0 = time.perf_counter()
    await asyncio.gather(*[worker(c) for c in conns])
    el = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return {
        "test": "http_rate",
        "url": a.url,
        "conns": a.conns,
        "rps": round(len(lat) / el, 1),
        "non200": errors[0],
        **lat_summary(lat),
    }


async def rest(a: argparse.Namespace) -> dict[str, Any]:
    u = urlsplit(a.base)
    c = Conn(u.hostname or "127.0.0.1", u.port or 80)
    body = json.dumps({"command": "true", "timeout": 30}).encode()
    lat: list[float] = []
    gets: list[int] = []
    bad: list[str] = []
    deadline = time.perf_counter() + a.secs
    for i in range(a.warmup + a.n):
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        status, data = await c.request("POST", f"/api/v1/nodes/{a.node}/tasks/", a.token, body)
        if status != 201:
            raise RuntimeError(f"POST task: {status} {data[:300]!r}")
        task_id = json.loads(data)["id"]
        n_get = 0
        state = ""
        while n_get < 10:
            n_get += 1
            status, data = await c.request("GET", f"/api/v1/tasks/{task_id}/?wait=10", a.token)
            state = json.loads(data).get("status", "")
            if state in ("succeeded", "failed", "cancelled", "timed_out", "lost"):
                break
        if state != "succeeded":
            bad.append(state)
        if i >= a.warmup:
            lat.append(time.perf_counter() - t0)
            gets.append(n_get)
    await c.close()
    return {
        "test": "rest_round_trip",
        **lat_summary(lat),
        "gets_per_task_max": max(gets) if gets else 0,
        "not_succeeded": len(bad),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["rate", "rest"])
    ap.add_argument("--url", default="")
    ap.add_argument("--base", default="")
    ap.add_argument("--token", default="")
    ap.add_argument("--node", default="")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--secs", type=float, default=5.0)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    a = ap.parse_args()
    if os.environ.get("PIN_CPU"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(os.environ["PIN_CPU"])})
    fn = rate if a.mode == "rate" else rest
    print(json.dumps(asyncio.run(asyncio.wait_for(fn(a), timeout=a.secs + 120))), flush=True)


if __name__ == "__main__":
    main()
