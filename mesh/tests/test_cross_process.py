"""Acceptance across processes: two `runmesh` + one web process on PostgreSQL and Redis.

A node holds its stream on runmesh A; a user dispatches `echo hi` through the web process and
reads `hi` back; a user without a grant gets 404 and nothing reaches the node.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from cortex.testing import wait_until
from mesh.tests.meshkit import TestNode, join, wait_serving

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
from django.contrib.auth.models import Group
from accounts.models import User
from mesh import services
admin = User.objects.create_superuser(email="root@example.com", password="x-admin-pass-1")
alice = User.objects.create_user(email="alice@example.com", password="x-alice-pass-1")
User.objects.create_user(email="bob@example.com", password="x-bob-pass-1")
group = Group.objects.create(name="ops")
alice.groups.add(group)
node, token = services.node_create(actor=admin, node_id=NODE_ID, display_name="XP")
services.node_grant(actor=admin, node=node, group=group)
print(token)
"""


class Stack:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed: {done.stderr[-3000:]}")
        return done.stdout

    def start(self, name: str, *args: str) -> None:
        log = open(self.tmp_path / f"{name}.log", "ab")  # noqa: SIM115  # closed with the process
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((name, process))

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + (self.tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]
            for name, _ in self.processes
        )

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                process.terminate()
        for _, process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def stack(tmp_path, postgres_url, redis_url, free_port) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    db_name = f"cortex_mesh_xp_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="cortex.test_settings",
        DATABASE_URL=f"{postgres_url}/{db_name}",
        REDIS_URL=redis_url,
        CORTEX_HEARTBEAT_INTERVAL="1",
        CORTEX_RECONNECT_GRACE="3",
        CORTEX_MEDIA_ROOT=str(tmp_path / "media"),
        PYTHONUNBUFFERED="1",
    )
    node_id = f"xp-{uuid.uuid4().hex[:8]}"
    running = Stack(tmp_path, env)
    try:
        running.manage("migrate", "--noinput", "-v", "0")
        output = running.manage("shell", "-v", "0", "-c", f"NODE_ID={node_id!r}\n" + SETUP)
        token = output.strip().splitlines()[-1]
        alice = running.manage("create_api_token", "alice@example.com").strip()
        bob = running.manage("create_api_token", "bob@example.com").strip()
        grpc_a, grpc_b, http = free_port(), free_port(), free_port()
        running.start("runmesh-a", "runmesh", "--address", f"127.0.0.1:{grpc_a}", "--grace", "2")
        running.start("runmesh-b", "runmesh", "--address", f"127.0.0.1:{grpc_b}", "--grace", "2")
        running.start("web", "serve", "--no-grpc", "--http", f"127.0.0.1:{http}")
        yield {
            "stack": running,
            "node_id": node_id,
            "invite": token,
            "alice": alice,
            "bob": bob,
            "grpc_a": f"127.0.0.1:{grpc_a}",
            "grpc_b": f"127.0.0.1:{grpc_b}",
            "http": f"http://127.0.0.1:{http}",
        }
    finally:
        running.stop()
        with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def http_call(
    base: str, method: str, path: str, token: str, body: dict | None = None
) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310  # loopback URL built by the test
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_http(base: str, timeout: float = 60) -> None:

    def healthy() -> bool:
        with urllib.request.urlopen(base + "/healthz", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)

    wait_until(healthy, timeout=timeout, ignore=(OSError,), message="web process did not start")


async def test_dispatch_through_web_reaches_node_on_another_runmesh(stack):
    running: Stack = stack["stack"]
    try:
        await wait_serving(stack["grpc_a"], timeout=60)
        await wait_serving(stack["grpc_b"], timeout=60)
        await asyncio.to_thread(wait_http, stack["http"])
    except AssertionError:
        pytest.fail(running.logs())
    node_id = stack["node_id"]
    # Two joins with one invite at the same moment, on two processes: exactly one wins.
    results = await asyncio.gather(
        join(stack["grpc_a"], node_id, stack["invite"]),
        join(stack["grpc_b"], node_id, stack["invite"]),
        return_exceptions=True,
    )
    credentials = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(credentials) == 1, results
    assert [e.code() for e in refused] == [grpc.StatusCode.UNAUTHENTICATED]

    node = TestNode(stack["grpc_a"], node_id, credentials[0])
    try:
        await node.connect()
        beating = node.keep_beating(0.5)
        base = stack["http"]
        status, created = await asyncio.to_thread(
            http_call,
            base,
            "POST",
            f"/api/v1/nodes/{node_id}/tasks/",
            stack["alice"],
            {"command": "echo hi", "timeout": 30},
        )
        assert status == 201, created
        assert created["status"] == "queued"
        task_id = await node.run_echo(timeout=20)
        assert task_id == created["id"]
        status, task = await asyncio.to_thread(
            http_call, base, "GET", f"/api/v1/tasks/{task_id}/?wait=20", stack["alice"]
        )
        assert status == 200
        assert (task["status"], task["exit_code"], task["stdout"]) == ("succeeded", 0, "hi\n")

        status, refused_body = await asyncio.to_thread(
            http_call,
            base,
            "POST",
            f"/api/v1/nodes/{node_id}/tasks/",
            stack["bob"],
            {"command": "echo nope"},
        )
        assert status == 404
        assert refused_body["error"]["code"] == "not_found"
        with pytest.raises(TimeoutError):
            await node.recv("task_assign", timeout=2)
        status, listed = await asyncio.to_thread(
            http_call, base, "GET", f"/api/v1/nodes/{node_id}/tasks/", stack["alice"]
        )
        assert [t["id"] for t in listed["results"]] == [task_id]
        status, seen = await asyncio.to_thread(
            http_call, base, "GET", f"/api/v1/nodes/{node_id}/", stack["alice"]
        )
        assert (seen["status"], seen["stats"]["cpu_percent"]) == ("online", 12.5)
        beating.cancel()
    except BaseException:
        print(running.logs())  # noqa: T201  # the processes' logs explain a failure
        raise
    finally:
        await node.hang_up()
