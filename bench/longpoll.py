"""Long polls under load: one user opens many `GET /api/v1/tasks/{id}/?wait=30` at once.

usage: python -m bench.longpoll [--waits 1500] [--per-user 20] [--per-process 500]
Starts its own hub (`manage.py serve`, SQLite in a temporary folder), then reports the hub's
resident memory and threads before, while the waits are open and after they are closed, how
many waits were held and refused (429), and another user's plain request latency meanwhile.
Prints one JSON object on stdout. (Issue 17: 1,500 such waits held 1,500 threads, took
another user's request to 53 s and the hub to 890 MB.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETUP = """
import json
from django.contrib.auth.models import Group
from accounts.models import User
from mesh import services
admin = User.objects.create_superuser(email="root@example.com", password="x-x-x-x-x-x")
team = Group.objects.create(name="team")
node, _ = services.node_create(actor=admin, node_id="away", display_name="Away")
services.node_grant(actor=admin, node=node, group=team)
out = {}
for name in ("ann", "bob"):
    user = User.objects.create_user(email=f"{name}@example.com", password="x-x-x-x-x-x")
    user.groups.add(team)
    out[name] = str(services.task_dispatch(
        actor=user, node=node, kind="shell", payload={"command": "echo hi"}, timeout=30
    ).pk)
print(json.dumps(out))
"""


def _proc(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    return {"rss_mb": fields["VmRSS"] // 1024, "threads": fields["Threads"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get(port: int, path: str, token: str) -> tuple[int, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status, time.perf_counter() - started


async def _hold(port: int, path: str, token: str, answers: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    try:
        line = await reader.readline()
        answers.append(int(line.split()[1]) if line else 0)
        await asyncio.sleep(3600)  # a held wait never gets here; a refused one stays counted
    finally:
        writer.close()


async def _load(port: int, pid: int, tasks: dict[str, str], tokens: dict[str, str], n: int) -> Any:
    answers: list[int] = []
    wait_path = f"/api/v1/tasks/{tasks['ann']}/?wait=30"
    holders = [
        asyncio.create_task(_hold(port, wait_path, tokens["ann"], answers)) for _ in range(n)
    ]
    await asyncio.sleep(8)  # let every request reach the hub
    during = _proc(pid)
    latencies = []
    for _ in range(20):
        status, seconds = await _get(port, f"/api/v1/tasks/{tasks['bob']}/", tokens["bob"])
        assert status == 200, status
        latencies.append(seconds)
    refused = answers.count(429)
    for holder in holders:
        holder.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    latencies.sort()
    return during, refused, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waits", type=int, default=1500)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--per-process", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cortex-longpoll-"))
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": f"sqlite:///{work / 'hub.sqlite3'}",
        "CORTEX_MEDIA_ROOT": str(work / "media"),
        "CORTEX_LONGPOLL_PER_USER": str(args.per_user),
        "CORTEX_LONGPOLL_PER_PROCESS": str(args.per_process),
    }
    env.pop("REDIS_URL", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    seeded = subprocess.run(
        [*manage, "shell", "-c", SETUP], env=env, cwd=ROOT, check=True, capture_output=True
    )
    tasks = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
    tokens = {
        name: subprocess.run(
            [*manage, "create_api_token", f"{name}@example.com"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        for name in tasks
    }
    log = open(work / "hub.log", "wb")  # noqa: SIM115  # closed at exit
    hub = subprocess.Popen(
        [*manage, "serve", "--http", f"127.0.0.1:{port}", "--no-grpc"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        asyncio.run(_get(port, f"/api/v1/tasks/{tasks['bob']}/?wait=0.1", tokens["bob"]))
        before = _proc(hub.pid)
        during, refused, latencies = asyncio.run(_load(port, hub.pid, tasks, tokens, args.waits))
        time.sleep(5)
        after = _proc(hub.pid)
    finally:
        hub.terminate()
        hub.wait(20)
    print(
        json.dumps(
            {
                "waits": args.waits,
                "refused_429": refused,
                "held": args.waits - refused,
                "before": before,
                "during": during,
                "after": after,
                "other_user_ms": {
                    "median": round(latencies[len(latencies) // 2] * 1000, 1),
                    "max": round(latencies[-1] * 1000, 1),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
