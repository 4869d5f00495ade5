"""A hub process that stops cleanly (SIGTERM) hands its agent runs over at once.

Two real processes on PostgreSQL, daphne and `serve`, with `CORTEX_AGENT_LOST_AFTER_S` far
beyond the test, so nothing here can be the lost-run reaper's work. A run whose model hangs
before any tool call is released by the stopping process and finished by the other one; a
run that has called a tool is ended `failed` (`hub_stopped`) by the stopping process itself,
before it exits (a re-run could repeat the tool's work).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from agents.tests.test_two_processes import ROOT, _healthy, _runs
from cortex.testing import wait_until
from providers.tests.llm_server import ScriptedLLM, Step, openai_text, openai_tool_call


def _wait(predicate: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str]) -> Any:
    """`wait_until` with the processes' logs in its failure."""
    return wait_until(
        predicate, timeout=timeout, message=lambda: f"{what} (in {timeout} s)\n{logs()}"
    )


pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SETUP = """
from accounts.models import User
from agents import services
from preferences.services import layer_update
alice = User.objects.create_user(email="alice@example.com", password="x-alice-pass-1")
layer_update(actor=alice, scope="user", kind="llm", user=alice, data={
    "provider": "openai_compatible", "base_url": BASE_URL, "api_key": "sk-test-1234567890",
    "model": "test-model"})
ids = []
for name in ("fresh", "tooled"):
    agent, _ = services.agent_create(actor=alice, name=name, prompt="Say ok.", node_ids=[],
        trigger={"kind": "manual"}, max_runtime_s=300)
    ids.append(agent.pk)
print(*ids)
"""

RUN_NOW = """
from agents import services
from agents.models import Agent
agent = Agent.objects.select_related("owner").get(pk=AGENT_ID)
print(services.run_now(actor=agent.owner, agent=agent).pk)
"""


@pytest.fixture
def cluster(tmp_path, postgres_url, redis_url, free_port) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
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
        CORTEX_AGENT_LOST_AFTER_S="3600",  # the reaper cannot explain anything below
        PYTHONUNBUFFERED="1",
    )
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def logs() -> str:
        return "\n".join(
            f"--- {name}\n" + (tmp_path / f"{name}.log").read_text(errors="replace")[-3000:]
            for name in processes
        )

    def manage(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def start(name: str) -> subprocess.Popen[bytes]:
        port = free_port()
        argv = (
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["cortex.asgi:application"]
            if name.startswith("daphne")
            else [sys.executable, "manage.py", "serve", "--no-grpc", "--http", f"127.0.0.1:{port}"]
        )
        log = open(tmp_path / f"{name}.log", "ab")  # noqa: SIM115  # closed with the process
        processes[name] = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        # daphne starts its background loops on its first connection (its health check).
        _wait(functools.partial(_healthy, port), 60, f"{name} on {port}", logs)
        return processes[name]

    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
            capture_output=True,
        )
        fresh, tooled = map(int, manage(f"BASE_URL={llm.url + '/v1'!r}\n" + SETUP).split())
        yield {
            "db": f"{postgres_url}/{db_name}",
            "agents": {"fresh": fresh, "tooled": tooled},
            "llm": llm,
            "start": start,
            "run_now": lambda agent_id: int(manage(RUN_NOW.replace("AGENT_ID", str(agent_id)))),
            "logs": logs,
        }
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=20)
        llm.close()
        with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _run(db: str, agent_id: int, run_id: int) -> tuple[Any, ...] | None:
    return next((r for r in _runs(db, agent_id) if r[0] == run_id), None)


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()  # SIGTERM: a clean stop
    return process.wait(timeout=60)


def test_a_stopping_process_hands_its_runs_over_at_once(cluster):
    db, llm, logs = cluster["db"], cluster["llm"], cluster["logs"]
    fresh, tooled = cluster["agents"]["fresh"], cluster["agents"]["tooled"]

    # daphne drives a run whose model hangs before any tool call.
    llm.add(Step("hang"))
    daphne = cluster["start"]("daphne")
    run_id = cluster["run_now"](fresh)
    _wait(
        lambda: (r := _run(db, fresh, run_id)) and r[2] == "running" and len(llm.requests) == 1,
        60,
        "the run hanging on its model in daphne",
        logs,
    )
    assert f":{daphne.pid}:" in _run(db, fresh, run_id)[3]
    llm.add(openai_text(["ok"]))
    serve = cluster["start"]("serve")
    assert _stop(daphne) == 0, logs()
    # Released before daphne exited (the reaper waits an hour): serve claims and finishes it.
    done = _wait(
        lambda: (r := _run(db, fresh, run_id)) and r[2] not in ("scheduled", "running") and r,
        60,
        "the released run finishing in serve",
        logs,
    )
    assert (done[2], done[4]) == ("succeeded", ""), done
    assert f":{serve.pid}:" in done[3]
    assert f"agent run {run_id} handed over: scheduled" in logs()

    # serve drives a run that has called a tool, then hangs: it is ended, not re-run.
    llm.add(openai_tool_call([("c1", "read_skill", '{"skill_name": "nothing-here"}')]))
    llm.add(Step("hang"))
    asked = len(llm.requests)
    run_id = cluster["run_now"](tooled)
    _wait(
        lambda: (
            (r := _run(db, tooled, run_id)) and r[2] == "running" and len(llm.requests) == asked + 2
        ),
        60,
        "the run hanging after its tool call in serve",
        logs,
    )
    assert _stop(serve) == 0, logs()
    ended = _run(db, tooled, run_id)  # read after exit: the stopping process ended it
    assert (ended[2], ended[4], ended[3]) == ("failed", "hub_stopped", ""), ended
