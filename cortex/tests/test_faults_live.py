"""Infrastructure faults cost latency, never errors: PostgreSQL and Redis restarted under load.

A web process (`serve --no-grpc`, the ASGI app daphne serves), a `runmesh` and a real agent run
on a PostgreSQL and a Redis of this test's own (started on free ports in a temporary directory,
so restarting them disturbs no other test). A steady trickle of API reads and task dispatches
runs throughout. While PostgreSQL is down every request answers 503 `database_unavailable` with
Retry-After; once each service is back: zero 5xx, every dispatched task reaches a final state,
the node kept its one stream, and no hub process restarted.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from cortex.testing import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[::-1]), None)
FINAL = {"succeeded", "failed", "cancelled", "timed_out", "lost"}
SEED = """
import json
from django.contrib.auth.models import Group
from accounts.models import User
from accounts.context import AuditContext
from accounts.services.tokens import token_create
from mesh import services

admin = User.objects.create_superuser(email="root@example.com", password="x-x-x-x-x-x")
user = User.objects.create_user(email="alice@example.com", password="x-x-x-x-x-x")
team = Group.objects.create(name="team")
user.groups.add(team)
node, invite = services.node_create(actor=admin, node_id="live", display_name="Live")
services.node_grant(actor=admin, node=node, group=team)
_, token = token_create(
    actor=None, user=user, name="trickle", audit_context=AuditContext.command("seed")
)
print(json.dumps({"invite": invite, "token": token}))
"""


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else list(args)


class Services:
    """A private PostgreSQL cluster and Redis server on free loopback ports."""

    def __init__(self, root: Path, pg_port: int, redis_port: int) -> None:
        self.root, self.pg_port, self.redis_port = root, pg_port, redis_port
        self.redis: subprocess.Popen[bytes] | None = None

    def pg(self, *args: str) -> None:
        subprocess.run(
            _as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(self.root / "pg"), *args),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def pg_start(self) -> None:
        options = (
            f"-p {self.pg_port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=100"
        )
        self.pg("-l", str(self.root / "pg.log"), "-w", "-o", options, "start")

    def pg_stop(self) -> None:
        # Fast: open connections end with "terminating connection due to administrator command".
        self.pg("-m", "fast", "-w", "stop")

    def redis_start(self) -> None:
        self.redis = subprocess.Popen(  # noqa: S603  # fixed arguments
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _port_open(self.redis_port), timeout=30, message="redis")

    def redis_stop(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait(timeout=10)

    def start(self) -> None:
        (self.root / "pg").mkdir()
        if os.getuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.root / "pg", "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                f"{PG_BIN}/initdb", "-D", str(self.root / "pg"), "-U", "postgres", "--auth=trust"
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.pg_start()
        self.redis_start()

    def stop(self) -> None:
        self.redis_stop()
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped already
            self.pg("-m", "immediate", "stop")


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Call:
    """One API call. `phase` is the phase it ran in from start to answer; a call that a phase
    change overtook (sent while up, answered while PostgreSQL was stopping) is named by both,
    `up>pg_stopping`, and belongs to neither."""

    phase: str
    started: float
    what: str
    status: int  # 0: no HTTP answer at all
    code: str = ""
    retry_after: str | None = None


@dataclass
class Trickle:
    """API reads and dispatches every few hundred milliseconds, each recorded with its phase."""

    base: str
    token: str
    phase: str = "up"
    calls: list[Call] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _span(self, began: str) -> str:
        return began if self.phase == began else f"{began}>{self.phase}"

    def _call(self, what: str, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        phase, started = self.phase, time.monotonic()
        try:
            response = requests.request(
                method,
                self.base + path,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=30,
                **kwargs,
            )
        except requests.RequestException:
            self.calls.append(Call(self._span(phase), started, what, 0))
            return None
        code = ""
        if response.status_code >= 400:
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "<not the shared error body>"
        self.calls.append(
            Call(
                self._span(phase),
                started,
                what,
                response.status_code,
                code,
                response.headers.get("Retry-After"),
            )
        )
        return response

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            self._call("list", "GET", "/api/v1/nodes/")
            if n % 3 == 0:
                created = self._call(
                    "dispatch",
                    "POST",
                    "/api/v1/nodes/live/tasks/",
                    json={"command": f"echo trickle-{n}", "timeout": 60},
                )
                if created is not None and created.status_code == 201:
                    self.tasks.append(created.json()["id"])
            self.stop.wait(0.25)


@pytest.fixture
def world(free_port) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    if PG_BIN is None or shutil.which("redis-server") is None:
        pytest.skip("needs PostgreSQL server binaries and redis-server")
    root = Path(tempfile.mkdtemp(prefix="cortex-faults-"))
    services = Services(root, free_port(), free_port())
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        services.start()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="cortex.test_settings",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{services.pg_port}/postgres",
            REDIS_URL=f"redis://127.0.0.1:{services.redis_port}/0",
            CORTEX_DB_POOL_TIMEOUT="3",
            CORTEX_DB_CONNECT_TIMEOUT="2",
            CORTEX_HEARTBEAT_INTERVAL="1",
            CORTEX_RECONNECT_GRACE="30",
            CORTEX_MEDIA_ROOT=str(root / "media"),
            PYTHONUNBUFFERED="1",
        )

        def manage(*args: str) -> str:
            done = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            return done.stdout

        manage("migrate", "--noinput", "-v", "0")
        seeded = yaml.safe_load(manage("shell", "-v", "0", "-c", SEED).splitlines()[-1])
        invite, token = seeded["invite"], seeded["token"]
        http, grpc, metrics = free_port(), free_port(), free_port()

        def start(name: str, *args: str, module: bool = False) -> None:
            log = open(root / f"{name}.log", "ab")  # noqa: SIM115  # closed with the process
            command = [sys.executable, *(["-m"] if module else ["manage.py"]), *args]
            processes[name] = subprocess.Popen(  # noqa: S603  # fixed arguments
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

        start("web", "serve", "--no-grpc", "--http", f"127.0.0.1:{http}")
        start(
            "runmesh",
            "runmesh",
            "--address",
            f"127.0.0.1:{grpc}",
            "--metrics-address",
            f"127.0.0.1:{metrics}",
            "--grace",
            "2",
        )
        config = root / "agent_config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "hub": {"address": f"127.0.0.1:{grpc}"},
                    "node_id": "live",
                    "invite_token": invite,
                    "state_dir": str(root / "agent-state"),
                    "workspace_root": str(root / "workspace"),
                    "reconnect": {"initial_s": 0.2, "max_s": 1.0},
                }
            )
        )
        wait_until(lambda: _port_open(grpc), timeout=60, message="runmesh")
        start("agent", "mesh.agent", "--config", str(config), module=True)
        yield {
            "services": services,
            "processes": processes,
            "root": root,
            "base": f"http://127.0.0.1:{http}",
            "metrics": f"http://127.0.0.1:{metrics}/metrics",
            "token": token,
        }
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        services.stop()
        shutil.rmtree(root, ignore_errors=True)


def _logs(world: dict[str, Any]) -> str:
    return "\n".join(
        f"--- {name}\n{(world['root'] / f'{name}.log').read_text(errors='replace')[-2500:]}"
        for name in world["processes"]
    )


def _ready(base: str) -> dict[str, Any] | None:
    try:
        response = requests.get(base + "/readyz", timeout=20)
    except requests.RequestException:
        return None
    return {
        **response.json(),
        "http": response.status_code,
        "retry_after": response.headers.get("Retry-After"),
    }


@dataclass
class Watcher:
    """A console WebSocket on node "live" (ticket auth), its frames recorded with the phase."""

    base: str
    token: str
    trickle: Trickle
    frames: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    close_code: int | None = None

    def start(self) -> Watcher:
        import json

        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect
        from websockets.typing import Origin

        ticket = requests.post(
            self.base + "/api/v1/ws-ticket/",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        ).json()["ticket"]
        url = self.base.replace("http://", "ws://") + f"/ws/nodes/live/?ticket={ticket}"
        ws = connect(url, origin=Origin(self.base), open_timeout=30).__enter__()

        def read() -> None:
            try:
                while True:
                    frame = json.loads(ws.recv())
                    self.frames.append((self.trickle.phase, frame))
            except ConnectionClosed as closed:
                self.close_code = closed.rcvd.code if closed.rcvd else 0

        threading.Thread(target=read, daemon=True).start()
        self.ws = ws
        return self


def _streams(world: dict[str, Any]) -> int:
    """Node streams the runmesh holds, from its own metrics port."""
    text = requests.get(world["metrics"], timeout=20).text
    line = next(x for x in text.splitlines() if x.startswith("cortex_mesh_streams_connected "))
    return int(float(line.split()[1]))


def test_postgres_and_redis_restarts_cost_latency_not_errors(world):
    base, services = world["base"], world["services"]
    pids = {name: p.pid for name, p in world["processes"].items()}
    try:
        wait_until(
            lambda: (_ready(base) or {}).get("http") == 200, timeout=60, message="the web process"
        )
        wait_until(lambda: _streams(world) == 1, timeout=60, message="the node's stream")
    except AssertionError:
        pytest.fail(_logs(world))
    trickle = Trickle(base, world["token"])
    worker = threading.Thread(target=trickle.run, daemon=True)
    worker.start()
    watchers: list[Watcher] = []
    try:
        before_pg = Watcher(base, world["token"], trickle).start()
        watchers.append(before_pg)
        time.sleep(2)
        # --- PostgreSQL restart
        trickle.phase = "pg_stopping"
        services.pg_stop()
        trickle.phase = "pg_down"
        down = wait_until(
            lambda: _ready(base), timeout=30, message="readyz while PostgreSQL is down"
        )
        wait_until(
            lambda: sum(c.phase == "pg_down" for c in trickle.calls) >= 3,
            timeout=60,
            message="calls",
        )
        services.pg_start()
        trickle.phase = "pg_back"
        wait_until(
            lambda: sum(c.phase == "pg_back" for c in trickle.calls) >= 8,
            timeout=60,
            message="calls",
        )
        # --- Redis restart, watched by a console socket opened once PostgreSQL was back
        before_redis = Watcher(base, world["token"], trickle).start()
        watchers.append(before_redis)
        trickle.phase = "redis_stopping"
        services.redis_stop()
        trickle.phase = "redis_down"
        redis_down = wait_until(
            lambda: _ready(base), timeout=30, message="readyz while Redis is down"
        )
        # Long enough for the web process's channel-layer probe (one per WebSocket re-check
        # round) to notice the outage: at least 12 calls and 6 seconds.
        redis_stopped = time.monotonic()
        wait_until(
            lambda: (
                sum(c.phase == "redis_down" for c in trickle.calls) >= 12
                and time.monotonic() - redis_stopped >= 6
            ),
            timeout=60,
            message="calls",
        )
        services.redis_start()
        trickle.phase = "redis_back"
        wait_until(
            lambda: sum(c.phase == "redis_back" for c in trickle.calls) >= 8,
            timeout=60,
            message="calls",
        )
        wait_until(
            lambda: any(
                p == "redis_back" and f["type"].startswith("task.") for p, f in before_redis.frames
            ),
            timeout=60,
            message="live frames after Redis came back",
        )
    finally:
        trickle.stop.set()
        worker.join(timeout=60)
        for watcher in watchers:
            with contextlib.suppress(Exception):
                watcher.ws.close()

    logs = _logs(world)
    # While PostgreSQL was down: readiness names it, every call answered 503 database_unavailable
    # with Retry-After (the shared error body), none a 500.
    assert down["http"] == 503 and down["down"] == ["database"], down
    assert down["retry_after"]
    during = [c for c in trickle.calls if c.phase == "pg_down"]
    assert during, trickle.calls
    refused = [c for c in during if c.status == 503]
    assert refused, during
    assert {(c.code, c.retry_after) for c in refused} == {("database_unavailable", "5")}, during
    # The rest were waiting for a connection when it came back: late, not failed.
    assert all(200 <= c.status < 300 for c in during if c.status != 503), during
    # While Redis was down: readiness names it; the API went on working (a doorbell is latency).
    assert redis_down["http"] == 503 and redis_down["down"] == ["channel_layer"], redis_down
    # Once each service was back, and before either went down: no error at all.
    calm = [c for c in trickle.calls if c.phase in ("up", "pg_back", "redis_down", "redis_back")]
    failed = [c for c in calm if not 200 <= c.status < 300]
    assert not failed, (failed, logs)
    # Nothing anywhere answered a 5xx other than the 503 of an outage.
    assert not [c for c in trickle.calls if c.status >= 500 and c.status != 503], logs

    # A console socket open while PostgreSQL went down was closed cleanly: 1013, try again later.
    assert before_pg.close_code == 1013, before_pg.frames[-5:]
    # A socket open through the Redis restart stayed open, was told to resync (frames published
    # meanwhile are lost; the client refetches after its last seq), and live frames resumed.
    types = [(p, f["type"]) for p, f in before_redis.frames]
    # A `resync` frame comes only when the web process's probe saw Redis down (a restart shorter
    # than a probe round goes unnoticed there; the client still sees the gap in `seq`).
    # Live task frames flow again once Redis is back (the resync may come before or after the
    # first of them: the web process's probe notices Redis on its own round).
    assert any(p == "redis_back" and t.startswith("task.") for p, t in types), types

    # Every task that was accepted reaches a final state.
    headers = {"Authorization": f"Bearer {world['token']}"}
    assert len(trickle.tasks) >= 6, trickle.calls

    def all_final() -> bool:
        for task_id in trickle.tasks:
            body = requests.get(f"{base}/api/v1/tasks/{task_id}/", headers=headers, timeout=30)
            if body.json().get("status") not in FINAL:
                return False
        return True

    try:
        wait_until(all_final, timeout=60, message="every task to finish")
    except AssertionError:
        pytest.fail(logs)
    statuses = {
        requests.get(f"{base}/api/v1/tasks/{t}/", headers=headers, timeout=30).json()["status"]
        for t in trickle.tasks
    }
    assert statuses == {"succeeded"}, statuses

    # No hub process restarted, and the node kept its one stream through both outages.
    for name, process in world["processes"].items():
        assert process.poll() is None and process.pid == pids[name], (name, logs)
    agent_log = (world["root"] / "agent.log").read_text(errors="replace")
    assert agent_log.count("connected to the hub") == 1, agent_log[-3000:]
    assert _streams(world) == 1
