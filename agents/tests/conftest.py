"""Fixtures for agents: a node the user may use, another they may not, fast limits; two real
hub processes on a PostgreSQL database of their own (`cluster`)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cortex.testing import wait_until
from providers.tests.llm_server import ScriptedLLM
from sessions_app.tests.conftest import fast_turns, llm_server  # noqa: F401  # shared fixtures


@pytest.fixture
def agent_settings(settings: Any) -> Any:
    settings.AGENT_MIN_INTERVAL_S = 1
    settings.AGENT_LOST_AFTER_S = 2
    settings.AGENT_LATE_GRACE_S = 30
    return settings


@pytest.fixture
def nodes(user: Any, staff_user: Any) -> dict[str, Any]:
    """`box` granted to the user's group; `secret-box` granted to nobody."""
    from django.contrib.auth.models import Group

    from mesh import services as mesh_services

    box, _ = mesh_services.node_create(actor=staff_user, node_id="box", display_name="Box")
    other, _ = mesh_services.node_create(
        actor=staff_user, node_id="secret-box", display_name="Secret"
    )
    group = Group.objects.create(name="team")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=box, group=group)
    return {"box": box, "other": other}


def agent_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "nightly",
        "prompt": "Check the disk.",
        "node_ids": ["box"],
        "trigger": {"kind": "interval", "seconds": 300},
    }
    body.update(extra)
    return body


# ---------------------------------------------------------------- two real hub processes
ROOT = Path(__file__).resolve().parents[2]

#: The start of every cluster's world: alice, whose model is the cluster's scripted LLM.
ALICE = """
from accounts.models import User
from preferences.services import layer_update
alice = User.objects.create_user(email="alice@example.com", password="x-alice-pass-1")
layer_update(actor=alice, scope="user", kind="llm", user=alice, data={
    "provider": "openai_compatible", "base_url": BASE_URL, "api_key": "sk-test-1234567890",
    "model": "test-model"})
"""


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:  # noqa: S310
            return bool(r.status == 200)
    except OSError:
        return False


@dataclass
class Cluster:
    """Hub processes (`serve`, daphne) on a PostgreSQL database of their own, with the agent
    scheduler on, and a scripted model on loopback."""

    db: str
    llm: Any
    env: dict[str, str]
    logs_dir: Path
    free_port: Callable[[], int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + (self.logs_dir / f"{name}.log").read_text(errors="replace")[-3000:]
            for name in self.processes
        )

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """`wait_until` with the processes' logs in its failure."""
        return wait_until(
            predicate, timeout=timeout, message=lambda: f"{what} (in {timeout} s)\n{self.logs()}"
        )

    def manage(self, code: str) -> str:
        """Run `code` in `manage.py shell` against the cluster's database; its last line."""
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
            cwd=ROOT,
            env=self.env,
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def seed(self, then: str) -> str:
        """ALICE, then `then`, in one process; the last line `then` printed."""
        return self.manage(f"BASE_URL={self.llm.url + '/v1'!r}\n" + ALICE + then)

    def start(self, name: str, *, wait: bool = True) -> subprocess.Popen[bytes]:
        """Start hub process `name` (daphne when it starts with "daphne", else `serve`)."""
        port = self.ports[name] = self.free_port()
        argv = (
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["cortex.asgi:application"]
            if name.startswith("daphne")
            else [sys.executable, "manage.py", "serve", "--no-grpc", "--http", f"127.0.0.1:{port}"]
        )
        log = open(self.logs_dir / f"{name}.log", "ab")  # noqa: SIM115  # closed with the process
        self.processes[name] = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        if wait:
            self.wait_healthy(name)
        return self.processes[name]

    def wait_healthy(self, *names: str) -> None:
        # daphne starts its background loops on its first connection (its health check).
        for name in names:
            port = self.ports[name]
            self.wait(functools.partial(_healthy, port), 60, f"{name} on {port}")

    def runs(self, agent_id: int) -> list[tuple[Any, ...]]:
        """(id, scheduled_for, status, claimed_by, error_code) of an agent's runs, in order."""
        with psycopg.connect(self.db) as conn:
            return conn.execute(
                "SELECT id, scheduled_for, status, claimed_by, error_code FROM agents_agentrun "
                "WHERE agent_id = %s ORDER BY scheduled_for",
                (agent_id,),
            ).fetchall()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def cluster_env() -> dict[str, str]:
    """What differs between the clusters of two modules (`CORTEX_AGENT_LOST_AFTER_S`...); a
    module overrides this fixture to set it."""
    return {}


@pytest.fixture
def cluster(tmp_path, postgres_url, redis_url, free_port, cluster_env) -> Iterator[Cluster]:  # type: ignore[no-untyped-def]
    """A migrated PostgreSQL database of the test's own and a scripted model; the test seeds
    (`Cluster.seed`) and starts the hub processes it needs (`Cluster.start`)."""
    db_name = f"cortex_agents_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    llm = ScriptedLLM().start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="cortex.test_settings",
        DATABASE_URL=f"{postgres_url}/{db_name}",
        REDIS_URL=redis_url,
        CORTEX_MEDIA_ROOT=str(tmp_path / "media"),
        CORTEX_AGENT_SCHEDULER="1",
        CORTEX_AGENT_MIN_INTERVAL_S="1",
        CORTEX_AGENT_TICK_S="0.2",
        CORTEX_AGENT_HEARTBEAT_S="0.5",
        PYTHONUNBUFFERED="1",
        **cluster_env,
    )
    hubs = Cluster(db=f"{postgres_url}/{db_name}", llm=llm, env=env, logs_dir=tmp_path,
                   free_port=free_port)  # fmt: skip
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
            capture_output=True,
        )
        yield hubs
    finally:
        hubs.stop_all()
        llm.close()
        with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
