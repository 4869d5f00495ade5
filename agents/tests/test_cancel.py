"""Cancelling a run: `POST /api/v1/agents/{id}/runs/{run_id}/cancel/`.

A waiting run and a parked one end `cancelled` at once; a running one stops through the chat's
own cancel (its task on a real node is cancelled too) and then ends `cancelled`; a finished
run is 409 `run_finished`; another user's run is 404.
"""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request
from typing import Any

import pytest

from accounts.models import AuditEvent
from agents import services
from agents.models import AgentRun
from agents.tests.test_runs import ExecTool, _agent, _drive, _status, exec_tool  # noqa: F401
from cortex.testing import wait_until
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.models import Message, ToolApproval
from sessions_app.tests.conftest import API_KEY, configure_llm

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("exec_tool")]


def _cancel(client: Any, run: AgentRun, agent_id: int | None = None) -> Any:
    return client.post(f"/api/v1/agents/{agent_id or run.agent_id}/runs/{run.pk}/cancel/")


def test_a_waiting_run_ends_cancelled_at_once_and_a_finished_one_is_409(
    user, user_client, nodes, agent_settings
):
    agent = _agent(user)
    run = services.run_now(actor=user, agent=agent)
    response = _cancel(user_client, run)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["id"], body["status"], body["error_code"]) == (run.pk, "cancelled", "cancelled")
    assert body["cancel_requested_at"] is not None and body["finished_at"] is not None
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert services.runs_claim(worker="w1") == []  # nothing left to claim
    audit = AuditEvent.objects.get(action="agents.run.cancel")
    assert (audit.actor_id, audit.target_id) == (user.pk, str(run.pk))
    assert audit.details == {"agent_id": agent.pk, "run_id": run.pk, "status": "scheduled"}

    again = _cancel(user_client, run)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "run_finished"
    assert AuditEvent.objects.filter(action="agents.run.cancel").count() == 1


def test_another_users_run_and_unknown_runs_are_404(
    user, user_client, make_user, nodes, agent_settings
):
    from rest_framework.test import APIClient

    agent = _agent(user)
    run = services.run_now(actor=user, agent=agent)
    other = APIClient()
    other.force_authenticate(make_user("mallory@example.com"))
    assert _cancel(other, run).status_code == 404
    mine, _ = services.agent_create(
        actor=user, name="second", prompt="p", node_ids=[], trigger={"kind": "manual"}
    )
    assert _cancel(user_client, run, agent_id=mine.pk).status_code == 404  # not its agent
    for bad in ("999999", "abc", "-1", "99999999999999999999999"):
        response = user_client.post(f"/api/v1/agents/{agent.pk}/runs/{bad}/cancel/")
        assert response.status_code == 404, (bad, response.content)
        assert response.json()["error"]["code"] == "not_found"
    assert user_client.get(f"/api/v1/agents/{agent.pk}/runs/{run.pk}/cancel/").status_code == 405
    run.refresh_from_db()
    assert run.status == "scheduled"
    assert not AuditEvent.objects.filter(action="agents.run.cancel").exists()


def test_a_parked_run_ends_cancelled_at_once_and_its_turn_stops(
    user, user_client, nodes, llm_server, fast_turns, agent_settings
):
    configure_llm(user, llm_server)
    llm_server.add(
        openai_tool_call([("c1", "exec_test", '{"node_id": "box", "command": "cat /etc/hosts"}')])
    )
    llm_server.add(openai_text(["Should never be said."]))
    run, thread = _drive(user, _agent(user))
    wait_until(lambda: _status(run, "awaiting_approval"), timeout=30)

    response = _cancel(user_client, run)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "cancelled"
    thread.join(timeout=30)
    assert not thread.is_alive()
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("cancelled", "cancelled")
    answer = Message.objects.filter(session_id=run.session_id, role="assistant").last()
    assert (answer.status, answer.error_code) == ("cancelled", "cancelled")
    assert ExecTool.calls == []
    assert ToolApproval.objects.get(session_id=run.session_id).status != "approved"


def test_a_finished_run_is_409(user, user_client, nodes, agent_settings):
    agent = _agent(user)
    run = services.run_now(actor=user, agent=agent)
    AgentRun.objects.filter(pk=run.pk).update(status="succeeded")
    response = _cancel(user_client, run)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "run_finished")
    assert not AuditEvent.objects.filter(action="agents.run.cancel").exists()


SETUP = """
import json
from django.contrib.auth.models import Group
from accounts.models import User
from agents import services as agents
from mesh import services
from preferences.services import layer_update

admin = User.objects.create_superuser(email="root@example.com", password="x-x-x-x-x-x")
user = User.objects.create_user(email="alice@example.com", password="x-x-x-x-x-x")
team = Group.objects.create(name="team")
user.groups.add(team)
node, invite = services.node_create(actor=admin, node_id="live", display_name="Live")
services.node_grant(actor=admin, node=node, group=team)
layer_update(actor=user, scope="user", kind="llm", user=user,
             data={"provider": "openai_compatible", "base_url": "BASE_URL",
                   "api_key": "API_KEY", "model": "test-model"})
agent, _ = agents.agent_create(actor=user, name="sleeper", prompt="Sleep.", node_ids=["live"],
    trigger={"kind": "manual"},
    unattended={"allow": [{"node_id": "live", "tool": "mesh_terminal", "command": "sleep 300"}]})
print(json.dumps({"invite": invite, "agent": agent.pk}))
"""

AUDITED = """
from accounts.models import AuditEvent
audited = AuditEvent.objects.filter(action="agents.run.cancel")
print(list(audited.values_list("target_id", flat=True)))
"""


def _http(hub: Any, method: str, path: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310  # loopback test hub
        hub.http_url + path, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.mark.slow
# Runs need the scheduler in the hub process.
@pytest.mark.live_hub_env(CORTEX_AGENT_SCHEDULER="1", CORTEX_AGENT_MIN_INTERVAL_S="1")
def test_a_running_run_stops_its_turn_and_its_task_on_a_real_node(live_hub, llm_server, tmp_path):
    code = SETUP.replace("BASE_URL", llm_server.url + "/v1").replace("API_KEY", API_KEY)
    seeded = json.loads(
        live_hub.manage("shell", "-v", "0", "-c", textwrap.dedent(code)).strip().splitlines()[-1]
    )
    agent_id = seeded["agent"]
    token = live_hub.manage("create_api_token", "alice@example.com").strip()
    node = live_hub.start_agent(node_id="live", invite=seeded["invite"], root=tmp_path)
    llm_server.add(
        openai_tool_call([("c1", "mesh_terminal", '{"node_id": "live", "command": "sleep 300"}')])
    )
    llm_server.add(openai_text(["Should never be said."]))
    try:
        wait_until(
            lambda: _http(live_hub, "GET", "/api/v1/nodes/live/", token)[1]["status"] == "online",
            timeout=90,
        )
        status, run = _http(live_hub, "POST", f"/api/v1/agents/{agent_id}/run/", token)
        assert status == 202, run

        def running_task() -> Any:
            tasks = _http(live_hub, "GET", "/api/v1/nodes/live/tasks/", token)[1]["results"]
            return next((t for t in tasks if t["status"] == "running"), None)

        task = wait_until(running_task, timeout=90)
        status, body = _http(
            live_hub, "POST", f"/api/v1/agents/{agent_id}/runs/{run['id']}/cancel/", token
        )
        assert status == 202, body
        assert body["status"] == "running" and body["cancel_requested_at"]

        def ended() -> Any:
            runs = _http(live_hub, "GET", f"/api/v1/agents/{agent_id}/runs/", token)[1]["results"]
            return next((r for r in runs if r["id"] == run["id"] and r["finished_at"]), None)

        finished = wait_until(ended, timeout=90)
        assert (finished["status"], finished["error_code"]) == ("cancelled", "cancelled")
        stopped = wait_until(
            lambda: (
                (t := _http(live_hub, "GET", f"/api/v1/tasks/{task['id']}/", token)[1])["status"]
                not in ("queued", "dispatched", "running")
                and t
            ),
            timeout=90,
        )
        assert stopped["status"] == "cancelled", stopped
        sid = finished["session_id"]
        messages = _http(live_hub, "GET", f"/api/v1/sessions/{sid}/messages/", token)[1]
        last = [m for m in messages["results"] if m["role"] == "assistant"][-1]
        assert (last["status"], last["error_code"]) == ("cancelled", "cancelled")
        audited = live_hub.manage("shell", "-v", "0", "-c", AUDITED).strip().splitlines()[-1]
        assert audited == repr([str(run["id"])])
        path = f"/api/v1/agents/{agent_id}/runs/{run['id']}/cancel/"
        again = _http(live_hub, "POST", path, token)
        assert (again[0], again[1]["error"]["code"]) == (409, "run_finished")
    except BaseException:
        print(live_hub.log()[-6000:])  # noqa: T201  # the hub's log explains a failure
        print((tmp_path / "agent.log").read_text()[-3000:])  # noqa: T201
        raise
    finally:
        live_hub.stop_process(node)
