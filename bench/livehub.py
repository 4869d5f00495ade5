"""A hub process and real agents that a benchmark starts for itself in a temporary directory
(bench/termbench.py, bench/wsync.py): SQLite, the in-memory channel layer, DEBUG off.

Start-up is not measured, so it is one way for both: migrate, then one `manage.py shell` that
makes the admin, the nodes and the admin's API token, then `serve`, then one agent per node
(optionally pinned to a CPU with `taskset`), then a wait until every node is online.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

#: Admin, nodes NODE_IDS (their invites) and the admin's API token, printed as one JSON line.
SEED = """
import json
from accounts.context import AuditContext
from accounts.models import User
from accounts.services.tokens import token_create
from mesh import services
admin = User.objects.create_superuser(email="root@example.com", password="x-x-x-x-x-x")
invites = {}
for node_id in NODE_IDS:
    _, invites[node_id] = services.node_create(actor=admin, node_id=node_id, display_name=node_id)
_, token = token_create(actor=None, user=admin, name="bench",
                        audit_context=AuditContext.command("create_api_token"))
print(json.dumps({"invites": invites, "token": token}))
"""


def print_result(result: dict[str, Any], json_path: str = "") -> None:
    """A section's figures as one JSON line on stdout (the harness reads the last one), and in
    `json_path` when given."""
    text = json.dumps(result)
    if json_path:
        Path(json_path).write_text(text)
    print(text)  # noqa: T201  # the harness reads stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


class BenchHub:
    """The hub (`manage.py serve`) and its agents; `stop()` ends every process it started."""

    def __init__(self, work: Path, **env: str) -> None:
        import requests

        self.work = work
        self.http = free_port()
        self.grpc = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REDIS"))}
        self.env.update(
            # DEBUG off (bench.settings): a DEBUG process keeps every query's SQL, 64 KB chunks
            # included, and its memory would say nothing about the path measured.
            DJANGO_SETTINGS_MODULE="bench.settings",
            BENCH_LAYER="memory",
            DATABASE_URL=f"sqlite:///{work / 'hub.sqlite3'}",
            CORTEX_MEDIA_ROOT=str(work / "media"),
            PYTHONUNBUFFERED="1",
            **env,
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.http_session = requests.Session()
        self.token = ""

    def manage(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603  # our own manage.py
            [PY, "manage.py", *args], env=self.env, cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        return done.stdout

    def spawn(
        self, argv: list[str], log: str, *, cpu: str = "", env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in the project root, logging to work/`log`; on CPU `cpu` when given."""
        handle = open(self.work / log, "ab")  # noqa: SIM115  # lives with the process
        proc = subprocess.Popen(  # noqa: S603  # our own programs
            ["taskset", "-c", cpu, *argv] if cpu else argv,
            env=env,
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def start(
        self,
        node_roots: dict[str, Path],
        *,
        hub_cpu: str = "",
        agent_cpu: str = "",
        agent_log: str = "{node_id}.log",
        online_timeout: float = 60.0,
    ) -> None:
        """Migrate, seed, start the hub, then one agent per node (its state and workspace under
        its root), and wait until every node is online."""
        import yaml

        self.manage("migrate", "--noinput", "-v", "0")
        code = f"NODE_IDS = {list(node_roots)!r}\n" + SEED
        seeded = json.loads(self.manage("shell", "-v", "0", "-c", code).splitlines()[-1])
        self.token = seeded["token"]
        self.http_session.headers["Authorization"] = f"Bearer {self.token}"
        self.hub = self.spawn(
            [PY, "manage.py", "serve", "--http", f"127.0.0.1:{self.http}", "--grpc",
             f"127.0.0.1:{self.grpc}"],
            "hub.log",
            cpu=hub_cpu,
            env=self.env,
        )  # fmt: skip
        wait_port(self.http)
        for node_id, root in node_roots.items():
            root.mkdir(parents=True, exist_ok=True)
            config = root / "agent.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "hub": {"address": f"127.0.0.1:{self.grpc}"},
                        "node_id": node_id,
                        "invite_token": seeded["invites"][node_id],
                        "state_dir": str(root / "agent-state"),
                        "workspace_root": str(root / "workspace"),
                        "log_level": "WARNING",
                    }
                )
            )
            self.spawn(
                [PY, "-m", "mesh.agent", "--config", str(config)],
                agent_log.format(node_id=node_id),
                cpu=agent_cpu,
            )
        deadline = time.monotonic() + online_timeout
        for node_id in node_roots:
            while self.call("GET", f"/api/v1/nodes/{node_id}/").json()["status"] == "offline":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"agent {node_id} did not connect")
                time.sleep(0.2)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request as the admin; an error status raises."""
        answer = self.http_session.request(
            method, f"http://127.0.0.1:{self.http}{path}", timeout=120, **kwargs
        )
        if answer.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
