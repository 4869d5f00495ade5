"""A hub process that stops cleanly (SIGTERM) hands its agent runs over at once.

Two real processes on PostgreSQL, daphne and `serve`, with `CORTEX_AGENT_LOST_AFTER_S` far
beyond the test, so nothing here can be the lost-run reaper's work. A run whose model hangs
before any tool call is released by the stopping process and finished by the other one; a
run that has called a tool is ended `failed` (`hub_stopped`) by the stopping process itself,
before it exits (a re-run could repeat the tool's work).
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from agents.tests.conftest import Cluster
from providers.tests.llm_server import Step, openai_text, openai_tool_call

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SETUP = """
from agents import services
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
def cluster_env() -> dict[str, str]:
    return {"CORTEX_AGENT_LOST_AFTER_S": "3600"}  # the reaper cannot explain anything below


def _run(cluster: Cluster, agent_id: int, run_id: int) -> tuple[Any, ...] | None:
    return next((r for r in cluster.runs(agent_id) if r[0] == run_id), None)


def _run_now(cluster: Cluster, agent_id: int) -> int:
    return int(cluster.manage(RUN_NOW.replace("AGENT_ID", str(agent_id))))


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()  # SIGTERM: a clean stop
    return process.wait(timeout=60)


def test_a_stopping_process_hands_its_runs_over_at_once(cluster: Cluster) -> None:
    llm, logs = cluster.llm, cluster.logs
    fresh, tooled = map(int, cluster.seed(SETUP).split())

    # daphne drives a run whose model hangs before any tool call.
    llm.add(Step("hang"))
    daphne = cluster.start("daphne")
    run_id = _run_now(cluster, fresh)
    cluster.wait(
        lambda: (
            (r := _run(cluster, fresh, run_id)) and r[2] == "running" and len(llm.requests) == 1
        ),
        60,
        "the run hanging on its model in daphne",
    )
    assert f":{daphne.pid}:" in _run(cluster, fresh, run_id)[3]
    llm.add(openai_text(["ok"]))
    serve = cluster.start("serve")
    assert _stop(daphne) == 0, logs()
    # Released before daphne exited (the reaper waits an hour): serve claims and finishes it.
    done = cluster.wait(
        lambda: (r := _run(cluster, fresh, run_id)) and r[2] not in ("scheduled", "running") and r,
        60,
        "the released run finishing in serve",
    )
    assert (done[2], done[4]) == ("succeeded", ""), done
    assert f":{serve.pid}:" in done[3]
    assert f"agent run {run_id} handed over: scheduled" in logs()

    # serve drives a run that has called a tool, then hangs: it is ended, not re-run.
    llm.add(openai_tool_call([("c1", "read_skill", '{"skill_name": "nothing-here"}')]))
    llm.add(Step("hang"))
    asked = len(llm.requests)
    run_id = _run_now(cluster, tooled)
    cluster.wait(
        lambda: (
            (r := _run(cluster, tooled, run_id))
            and r[2] == "running"
            and len(llm.requests) == asked + 2
        ),
        60,
        "the run hanging after its tool call in serve",
    )
    assert _stop(serve) == 0, logs()
    ended = _run(cluster, tooled, run_id)  # read after exit: the stopping process ended it
    assert (ended[2], ended[4], ended[3]) == ("failed", "hub_stopped", ""), ended
