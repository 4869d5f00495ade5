"""Shared-workspace benchmarks (issue 22): `python -m bench.wsync [--files N] [--mb M]
[--watch-files W] [--json FILE]`.

Brings its own hub (`manage.py serve`, SQLite) and three real agents (lead, n1, n2) in a
temporary directory, and measures, in one run:

- initial sync: N files / M MB in a `hub` workspace reaching n1 and n2 (from the resync to both
  nodes `in_sync` with every file in place), against `rsync -a` of the same tree to two
  destinations through an rsync daemon on loopback; the ratio is the hub's throughput over
  rsync's (goal: at least 0.5);
- lead change: in a `node` workspace led by `lead`, a small file written on the lead's disk
  until it is on n1's disk, p50/p95 over repeated changes (goal: p50 under 1 s);
- idle CPU of the lead's agent while it watches W files and nothing changes (percent of one
  core over 10 s, psutil).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench.termbench import _free_port, _wait_port

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
NODES = ("lead", "n1", "n2")

SEED = """
import json
from accounts.models import User
from mesh import services
admin = User.objects.create_superuser(email="root@example.com", password="x-x-x-x-x-x")
invites = {}
for node_id in ("lead", "n1", "n2"):
    node, invites[node_id] = services.node_create(
        actor=admin, node_id=node_id, display_name=node_id,
        skill_config={"max_concurrent_tasks": 8},
    )
print(json.dumps(invites))
"""


class Hub:
    def __init__(self, work: Path) -> None:
        self.work, self.http, self.grpc = work, _free_port(), _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REDIS"))}
        env.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            BENCH_LAYER="memory",
            DATABASE_URL=f"sqlite:///{work / 'hub.sqlite3'}",
            CORTEX_MEDIA_ROOT=str(work / "media"),
            CORTEX_WORKSPACE_ROOT=str(work / "mirror"),
            CORTEX_WORKSPACE_MAX_BYTES=str(8 * 1024**3),
            CORTEX_HEARTBEAT_INTERVAL="2",
            PYTHONUNBUFFERED="1",
        )
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def manage(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603  # our own manage.py
            [PY, "manage.py", *args], env=self.env, cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        return done.stdout

    def start(self) -> None:
        import yaml

        self.manage("migrate", "--noinput", "-v", "0")
        invites = json.loads(self.manage("shell", "-v", "0", "-c", SEED).splitlines()[-1])
        self.token = self.manage("create_api_token", "root@example.com").strip()
        log = open(self.work / "hub.log", "ab")  # noqa: SIM115  # lives with the process
        self.procs["hub"] = subprocess.Popen(  # noqa: S603
            [PY, "manage.py", "serve", "--http", f"127.0.0.1:{self.http}", "--grpc",
             f"127.0.0.1:{self.grpc}"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_port(self.http)
        for node_id in NODES:
            root = self.work / node_id
            root.mkdir()
            config = root / "agent.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "hub": {"address": f"127.0.0.1:{self.grpc}"},
                        "node_id": node_id,
                        "invite_token": invites[node_id],
                        "state_dir": str(root / "state"),
                        "workspace_root": str(root / "workspace"),
                        "log_level": "WARNING",
                    }
                )
            )
            self.procs[node_id] = subprocess.Popen(  # noqa: S603
                [PY, "-m", "mesh.agent", "--config", str(config)],
                cwd=ROOT, stdout=open(root / "agent.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
            )  # fmt: skip
        for node_id in NODES:
            until(lambda n=node_id: self.api("GET", f"/api/v1/nodes/{n}/")["status"] != "offline")

    def api(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(  # noqa: S310  # loopback
            f"http://127.0.0.1:{self.http}{path}",
            method=method,
            data=data,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/octet-stream"
                if raw is not None
                else "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            text = response.read()
            return json.loads(text) if text else None

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def until(check: Any, timeout: float = 900.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError("timed out")


def make_tree(root: Path, files: int, megabytes: int) -> int:
    """`files` files of random bytes in 50 folders, `megabytes` MB in all."""
    size = max(1, megabytes * 1024 * 1024 // files)
    for i in range(files):
        path = root / f"d{i % 50:02d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return size * files


def rsync_baseline(work: Path, tree: Path) -> float:
    """Seconds for `rsync -a` of the tree to two fresh destinations via a loopback daemon."""
    port = _free_port()
    conf = work / "rsyncd.conf"
    conf.write_text(f"use chroot = no\n[src]\n  path = {tree}\n  read only = yes\n")
    daemon = subprocess.Popen(  # noqa: S603
        ["rsync", "--daemon", "--no-detach", f"--port={port}", f"--config={conf}",
         "--address=127.0.0.1"],
    )  # fmt: skip
    try:
        _wait_port(port)
        start = time.perf_counter()
        for name in ("dst1", "dst2"):
            subprocess.run(  # noqa: S603
                ["rsync", "-a", f"rsync://127.0.0.1:{port}/src/", str(work / name) + "/"],
                check=True,
            )  # fmt: skip
        return time.perf_counter() - start
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def states(hub: Hub, sid: int) -> dict[str, str]:
    body = hub.api("GET", f"/api/v1/sessions/{sid}/workspace/")
    return {n["node_id"]: n["state"] for n in body["nodes"]}


def initial_sync(hub: Hub, tree: Path, total: int) -> dict[str, Any]:
    sid = hub.api("POST", "/api/v1/sessions/", {"title": "bench"})["id"]
    hub.api("PATCH", f"/api/v1/sessions/{sid}/workspace/", {"source": "hub"})
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    for path in files:  # into the mirror first (no node attached yet): not timed
        rel = path.relative_to(tree).as_posix()
        hub.api("PUT", f"/api/v1/sessions/{sid}/workspace/file/?path={rel}", raw=path.read_bytes())
    for node_id in ("n1", "n2"):
        hub.api("POST", f"/api/v1/sessions/{sid}/nodes/", {"node_id": node_id})
    start = time.perf_counter()
    hub.api("POST", f"/api/v1/sessions/{sid}/workspace/resync/")
    until(lambda: states(hub, sid) == {"n1": "in_sync", "n2": "in_sync"}, interval=0.2)
    seconds = time.perf_counter() - start
    for node_id in ("n1", "n2"):
        folder = hub.work / node_id / "workspace" / "sessions" / str(sid)
        got = sum(1 for p in folder.rglob("*.bin"))
        if got != len(files):
            raise RuntimeError(f"{node_id} holds {got} of {len(files)} files")
    return {"seconds": round(seconds, 2), "mb_per_s": round(2 * total / seconds / 2**20, 1)}


def lead_changes(hub: Hub, changes: int, watch_files: int) -> dict[str, Any]:
    lead_dir = hub.work / "lead" / "workspace" / "proj"
    make_tree(lead_dir, watch_files, max(1, watch_files // 1000))
    sid = hub.api("POST", "/api/v1/sessions/", {"title": "lead"})["id"]
    for node_id in ("lead", "n1"):
        hub.api("POST", f"/api/v1/sessions/{sid}/nodes/", {"node_id": node_id})
    hub.api(
        "PATCH",
        f"/api/v1/sessions/{sid}/workspace/",
        {"source": "node", "node_id": "lead", "path": "proj"},
    )
    until(lambda: states(hub, sid) == {"lead": "in_sync", "n1": "in_sync"}, interval=0.5)
    other = hub.work / "n1" / "workspace" / "sessions" / str(sid)
    samples = []
    for i in range(changes):
        target = lead_dir / "changes" / f"c{i}.txt"
        target.parent.mkdir(exist_ok=True)
        start = time.perf_counter()
        target.write_text(f"change {i}\n")
        until(lambda t=other / "changes" / f"c{i}.txt": t.exists(), timeout=60, interval=0.005)
        samples.append(time.perf_counter() - start)
        time.sleep(0.3)
    time.sleep(3)  # settle, then measure the watching lead at rest
    agent = psutil.Process(hub.procs["lead"].pid)
    before = agent.cpu_times()
    time.sleep(10)
    after = agent.cpu_times()
    busy = (after.user - before.user) + (after.system - before.system)
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "n": len(ordered),
        "watched_files": watch_files,
        "idle_cpu_percent": round(busy / 10 * 100, 2),
    }


def run_all(files: int, megabytes: int, watch_files: int, changes: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="wsync-"))
    out: dict[str, Any] = {"files": files, "mb": megabytes}
    hub = Hub(work)
    try:
        tree = work / "tree"
        total = make_tree(tree, files, megabytes)
        out["rsync_s"] = round(rsync_baseline(work, tree), 2)
        out["rsync_mb_per_s"] = round(2 * total / out["rsync_s"] / 2**20, 1)
        hub.start()
        out["hub"] = initial_sync(hub, tree, total)
        out["throughput_ratio_vs_rsync"] = round(out["hub"]["mb_per_s"] / out["rsync_mb_per_s"], 3)
        out["lead"] = lead_changes(hub, changes, watch_files)
    finally:
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.wsync")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--watch-files", type=int, default=10000)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    text = json.dumps(run_all(args.files, args.mb, args.watch_files, args.changes))
    if args.json:
        Path(args.json).write_text(text)
    print(text)  # noqa: T201  # the harness reads the last JSON line


if __name__ == "__main__":
    main()
