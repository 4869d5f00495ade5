"""Exactly once across processes: two hub processes (`serve` and daphne) on PostgreSQL.

An agent on a 2-second interval: every tick has exactly one run row, with no gaps, whichever
process fired it. Then a run hangs on the model, the process driving it is killed (SIGKILL):
the run ends `lost` and the next tick still fires once, in the survivor.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from typing import Any

import pytest

from agents.tests.conftest import Cluster
from cortex.testing import wait_until
from providers.tests.llm_server import Step, openai_text

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

INTERVAL = 2

SETUP = """
from agents import services
agent, _ = services.agent_create(actor=alice, name="tick", prompt="Say ok.", node_ids=[],
    trigger={"kind": "interval", "seconds": INTERVAL}, max_runtime_s=120)
print(agent.pk)
"""


@pytest.fixture
def cluster_env() -> dict[str, str]:
    return {"CORTEX_AGENT_LOST_AFTER_S": "10"}  # a loaded CI machine stalls a process for seconds


@pytest.fixture
def hubs(cluster: Cluster) -> dict[str, Any]:
    """The agent on its interval, with `serve` and daphne both running."""
    agent_id = int(cluster.seed(f"INTERVAL={INTERVAL}\n" + SETUP))
    cluster.start("serve", wait=False)
    cluster.start("daphne", wait=False)
    cluster.wait_healthy("serve", "daphne")
    return {
        "agent_id": agent_id,
        "llm": cluster.llm,
        "processes": cluster.processes,
        "logs": cluster.logs,
        "runs": cluster.runs,
    }


def _check_once(runs: list[tuple[Any, ...]]) -> None:
    ticks = [r[1] for r in runs]
    assert len(ticks) == len(set(ticks))
    gaps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert gaps <= {timedelta(seconds=INTERVAL)}, sorted(gaps)


def test_each_tick_fires_once_and_a_killed_process_loses_only_its_run(hubs):
    agent_id, llm, logs, read_runs = hubs["agent_id"], hubs["llm"], hubs["logs"], hubs["runs"]
    for _ in range(40):
        llm.add(openai_text(["ok"]))

    # ~20 s of ticks shared by two processes.
    wait_until(
        lambda: len(read_runs(agent_id)) >= 10,
        timeout=90,
        message=lambda: "ten ticks" + "\n" + logs(),
    )
    runs = read_runs(agent_id)
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
        running = [r for r in read_runs(agent_id) if r[2] == "running"]
        return (
            running[0] if running and len(llm.requests) and llm.script[0].kind != "hang" else None
        )

    victim = wait_until(hanging, timeout=60, message=lambda: "a hanging run" + "\n" + logs())
    pid = int(victim[3].rsplit(":", 2)[1])
    os.kill(pid, signal.SIGKILL)
    lost = wait_until(
        lambda: next(
            (r for r in read_runs(agent_id) if r[0] == victim[0] and r[2] == "lost"), None
        ),
        timeout=60,
        message=lambda: "the run ending lost" + "\n" + logs(),
    )
    assert lost[4] == "lost"
    # The survivor fires the ticks after it, each once.
    wait_until(
        lambda: (
            sum(1 for r in read_runs(agent_id) if r[1] > victim[1] and r[2] == "succeeded") >= 2
        ),
        timeout=60,
        message=lambda: "ticks after the kill" + "\n" + logs(),
    )
    runs = read_runs(agent_id)
    _check_once(runs)
    after = [r for r in runs if r[1] > lost[1] and r[2] == "succeeded"]
    assert all(str(pid) not in r[3] for r in after)
