"""Exactly once across processes: two hub processes (`serve` and daphne) on PostgreSQL.

An agent on a 2-second interval: every tick has exactly one run row, with no gaps, whichever
process fired it. Then a run hangs on the model, the process driving it is killed (SIGKILL):
the run ends `lost` and the next tick still fires once, in the survivor.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cortex.testing import wait_until
from providers.tests.llm_server import ScriptedLLM, Step, openai_text

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 2

SETUP = """
from accounts.models import User
from agents import services
from preferences.services import layer_update
alice = User.objects.create_user(email="alice@example.com", password="x-alice-pass-1")
layer_update(actor=alice, scope="user", kind="llm", user=alice, data={
    "provider": "openai_compatible", "base_url": BASE_URL, "api_key": "sk-test-1234567890",
    "model": "test-model"})
agent, _ = services.agent_create(actor=alice, name="tick", prompt="Say ok.", node_ids=[],
    trigger={"kind": "interval", "seconds": INTERVAL}, max_runtime_s=120)
print(agent.pk)
"""


@pytest.fixture
def hubs(tmp_path, postgres_url, redis_url, free_port) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
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
        CORTEX_AGENT_LOST_AFTER_S="10",  # a loaded CI machine stalls a process for seconds
        PYTHONUNBUFFERED="1",
    )
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def logs() -> str:
        return "\n".join(
            f"--- {name}\n" + (tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]
            for name, _ in processes
        )

    def start(name: str, argv: list[str]) -> None:
        log = open(tmp_path / f"{name}.log", "ab")  # noqa: SIM115  # closed with the process
        processes.append(
            (name, subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        )

    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
            capture_output=True,
        )
        script = f"BASE_URL={llm.url + '/v1'!r}\nINTERVAL={INTERVAL}\n" + SETUP
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
        )
        agent_id = int(done.stdout.strip().splitlines()[-1])
        port_a, port_b = free_port(), free_port()
        start(
            "serve",
            [sys.executable, "manage.py", "serve", "--no-grpc", "--http", f"127.0.0.1:{port_a}"],
        )
        start(
            "daphne",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port_b),
                "cortex.asgi:application",
            ],
        )
        for port in (port_a, port_b):
            # daphne starts its background loops on its first connection (its health check).
            def said(port: int = port) -> str:
                return f"hub on {port}\n" + logs()

            wait_until(functools.partial(_healthy, port), timeout=60, message=said)
        yield {
            "db": f"{postgres_url}/{db_name}",
            "agent_id": agent_id,
            "llm": llm,
            "processes": dict(processes),
            "logs": logs,
        }
    finally:
        for _, process in processes:
            if process.poll() is None:
                process.terminate()
        for _, process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        llm.close()
        with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:  # noqa: S310
            return r.status == 200
    except OSError:
        return False


def _runs(db: str, agent_id: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT id, scheduled_for, status, claimed_by, error_code FROM agents_agentrun "
            "WHERE agent_id = %s ORDER BY scheduled_for",
            (agent_id,),
        ).fetchall()


def _check_once(runs: list[tuple[Any, ...]]) -> None:
    ticks = [r[1] for r in runs]
    assert len(ticks) == len(set(ticks))
    gaps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert gaps <= {timedelta(seconds=INTERVAL)}, sorted(gaps)


def test_each_tick_fires_once_and_a_killed_process_loses_only_its_run(hubs):
    db, agent_id, llm, logs = hubs["db"], hubs["agent_id"], hubs["llm"], hubs["logs"]
    for _ in range(40):
        llm.add(openai_text(["ok"]))

    # ~20 s of ticks shared by two processes.
    wait_until(
        lambda: len(_runs(db, agent_id)) >= 10,
        timeout=90,
        message=lambda: "ten ticks" + "\n" + logs(),
    )
    runs = _runs(db, agent_id)
    _check_once(runs)
    finished = [r for r in runs if r[2] not in ("scheduled", "running")]
    assert {r[2] for r in finished} <= {"succeeded", "skipped"}, runs
    assert sum(r[2] == "succeeded" for r in finished) >= 5, runs
    workers = {r[3].rsplit(":", 2)[1] for r in runs if r[3]}
    pids = {str(p.pid) for p in hubs["processes"].values()}
    assert workers <= pids

    # The next run hangs on the model; kill the process driving it.
    llm.script.clear()
    llm.add(Step("hang"))
    for _ in range(40):
        llm.add(openai_text(["ok"]))

    def hanging() -> tuple[Any, ...] | None:
        running = [r for r in _runs(db, agent_id) if r[2] == "running"]
        return (
            running[0] if running and len(llm.requests) and llm.script[0].kind != "hang" else None
        )

    victim = wait_until(hanging, timeout=60, message=lambda: "a hanging run" + "\n" + logs())
    pid = int(victim[3].rsplit(":", 2)[1])
    os.kill(pid, signal.SIGKILL)
    lost = wait_until(
        lambda: next(
            (r for r in _runs(db, agent_id) if r[0] == victim[0] and r[2] == "lost"), None
        ),
        timeout=60,
        message=lambda: "the run ending lost" + "\n" + logs(),
    )
    assert lost[4] == "lost"
    # The survivor fires the ticks after it, each once.
    wait_until(
        lambda: (
            sum(1 for r in _runs(db, agent_id) if r[1] > victim[1] and r[2] == "succeeded") >= 2
        ),
        timeout=60,
        message=lambda: "ticks after the kill" + "\n" + logs(),
    )
    runs = _runs(db, agent_id)
    _check_once(runs)
    after = [r for r in runs if r[1] > lost[1] and r[2] == "succeeded"]
    assert all(str(pid) not in r[3] for r in after)
