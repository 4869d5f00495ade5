"""Whole runs against a scripted provider on loopback: unattended rules, approvals, Co-Worker,
the webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from agents import services
from agents.models import Agent, AgentRun
from agents.services.runner import run_drive
from cortex.testing import wait_until
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.models import ApprovalRule, ChatSession, Message, ToolApproval
from sessions_app.tests.conftest import configure_llm
from tools.registry import registry
from tools.tests.fakes import recording_tool

pytestmark = pytest.mark.django_db(transaction=True)


ExecTool = recording_tool(
    "exec_test", risk="exec", argument="command", reply="ran {}", on_node=True
)


@pytest.fixture
def exec_tool():
    ExecTool.calls.clear()
    with registry.temporarily(ExecTool):
        yield


def _agent(user: Any, **extra: Any) -> Agent:
    agent, _ = services.agent_create(
        actor=user,
        name="ops",
        prompt="Check the disk.",
        instructions="Be brief.",
        node_ids=["box"],
        trigger={"kind": "manual"},
        unattended={"allow": [{"node_id": "box", "tool": "exec_test", "command": "df -h"}]},
        **extra,
    )
    return agent


def _drive(user: Any, agent: Agent, **kwargs: Any) -> tuple[AgentRun, threading.Thread]:
    run = services.run_now(actor=user, agent=agent, **kwargs)
    assert services.runs_claim(worker="w1") == [run.pk]
    thread = threading.Thread(target=lambda: asyncio.run(run_drive(run_id=run.pk, worker="w1")))
    thread.start()
    return run, thread


def _status(run: AgentRun, *wanted: str) -> AgentRun | None:
    run.refresh_from_db()
    return run if run.status in wanted else None


def test_a_call_outside_the_rules_parks_until_the_owner_approves(
    user, user_client, nodes, llm_server, fast_turns, agent_settings, exec_tool
):
    configure_llm(user, llm_server)
    llm_server.add(
        openai_tool_call([("c1", "exec_test", '{"node_id": "box", "command": "df -h"}')])
    )
    llm_server.add(
        openai_tool_call([("c2", "exec_test", '{"node_id": "box", "command": "cat /etc/hosts"}')])
    )
    llm_server.add(openai_text(["All fine."]))
    agent = _agent(user)
    run, thread = _drive(user, agent)

    wait_until(lambda: _status(run, "awaiting_approval"), timeout=30)
    assert ExecTool.calls == ["df -h"]  # inside the rules: no person asked
    session = ChatSession.objects.get(pk=run.session_id)  # type: ignore[misc]  # set by now
    assert session.owner == user and session.approval_policy == "rules"
    first = Message.objects.filter(session=session, role="user").first()
    assert "Check the disk." in first.content and "Be brief." in first.content
    approval = ToolApproval.objects.get(session=session)
    assert (approval.tool_call_id, approval.status) == ("c2", "pending")
    assert AuditEvent.objects.filter(action="sessions.approval_rule.used").count() == 1

    response = user_client.post(f"/api/v1/sessions/{session.pk}/approvals/{approval.pk}/approve/")
    assert response.status_code == 200, response.content
    wait_until(lambda: _status(run, "succeeded", "failed", "timed_out"), timeout=30)
    thread.join(timeout=30)
    assert run.status == "succeeded", (run.error_code, run.error)
    assert ExecTool.calls == ["df -h", "cat /etc/hosts"]
    assert run.finished_at is not None
    listed = user_client.get(f"/api/v1/agents/{agent.pk}/runs/").json()["results"][0]
    assert (listed["status"], listed["session_id"]) == ("succeeded", session.pk)
    # The rules belonged to that run's chat only.
    assert list(ApprovalRule.objects.values_list("session_id", flat=True)) == [session.pk]


def test_an_unanswered_approval_ends_the_run_timed_out(
    user, nodes, llm_server, fast_turns, agent_settings, exec_tool
):
    configure_llm(user, llm_server)
    llm_server.add(
        openai_tool_call([("c1", "exec_test", '{"node_id": "box", "command": "uptime"}')])
    )
    agent = _agent(user)
    Agent.objects.filter(pk=agent.pk).update(approval_timeout_s=1)
    run, thread = _drive(user, agent)
    wait_until(lambda: _status(run, "timed_out", "failed", "succeeded"), timeout=30)
    thread.join(timeout=30)
    assert (run.status, run.error_code) == ("timed_out", "approval_timed_out")
    assert ExecTool.calls == []


def test_step_limit_fails_the_run(user, nodes, llm_server, fast_turns, agent_settings, exec_tool):
    configure_llm(user, llm_server)
    for n in range(3):
        llm_server.add(
            openai_tool_call([(f"c{n}", "exec_test", '{"node_id": "box", "command": "df -h"}')])
        )
    agent = _agent(user, max_steps=2)
    run, thread = _drive(user, agent)
    wait_until(lambda: _status(run, "timed_out", "failed", "succeeded"), timeout=30)
    thread.join(timeout=30)
    assert (run.status, run.error_code) == ("failed", "step_limit")
    assert ExecTool.calls == ["df -h", "df -h"]


def test_token_limit_fails_the_run(user, nodes, llm_server, fast_turns, agent_settings, exec_tool):
    configure_llm(user, llm_server)
    llm_server.add(
        openai_tool_call(
            [("c1", "exec_test", '{"node_id": "box", "command": "df -h"}')], usage=(400, 200)
        )
    )
    agent = _agent(user, max_tokens=500)
    run, thread = _drive(user, agent)
    wait_until(lambda: _status(run, "timed_out", "failed", "succeeded"), timeout=30)
    thread.join(timeout=30)
    assert (run.status, run.error_code) == ("failed", "token_limit")


def test_co_worker_scores_and_the_agent_reworks(
    user, nodes, llm_server, fast_turns, agent_settings, exec_tool
):
    configure_llm(user, llm_server)
    llm_server.add(openai_text(["Disk is fine."]))
    llm_server.add(openai_text([json.dumps({"score": 40, "feedback": "Give the numbers."})]))
    llm_server.add(openai_text(["Disk: 42% used."]))
    llm_server.add(openai_text([json.dumps({"score": 90, "feedback": "Good."})]))
    agent = _agent(user, rubric="States the usage in percent.", rework_threshold=70, max_reworks=2)
    run, thread = _drive(user, agent)
    wait_until(lambda: _status(run, "timed_out", "failed", "succeeded"), timeout=30)
    thread.join(timeout=30)
    assert run.status == "succeeded"
    assert (run.score, run.feedback, run.reworks) == (90, "Good.", 1)
    assert [e["score"] for e in run.evaluations] == [40, 90]
    rework = Message.objects.filter(session_id=run.session_id, role="user").last()
    assert "Give the numbers." in rework.content
    # The evaluation is a separate call: the chat holds two answers, not the reviews.
    answers = Message.objects.filter(session_id=run.session_id, role="assistant", status="done")
    assert [m.content for m in answers] == ["Disk is fine.", "Disk: 42% used."]


def test_webhook_signature(user, nodes, agent_settings, llm_server):
    agent, secret = services.agent_create(
        actor=user, name="hook", prompt="p", node_ids=[], trigger={"kind": "manual"}
    )
    client = APIClient()
    body = b'{"alert": "disk full"}'
    url = f"/api/v1/agents/{agent.pk}/trigger/"

    now = str(int(time.time()))

    def post(signature: str, target: str = url, timestamp: str = now) -> Any:
        return client.generic(
            "POST",
            target,
            body,  # type: ignore[arg-type]  # Django's test client takes bytes too
            content_type="application/json",
            HTTP_X_CORTEX_SIGNATURE=signature,
            HTTP_X_CORTEX_TIMESTAMP=timestamp,
        )

    def sign(key: str = secret, data: bytes = body, timestamp: str = now) -> str:
        return services.signature_of(secret=key, body=data, timestamp=timestamp)

    wrong = sign(secret + "x")
    old_style = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    for signature in (
        wrong,
        "",
        "sha256=",
        wrong.upper(),
        sign(data=body + b" "),
        sign(timestamp=str(int(now) + 1)),
        old_style,  # the body alone while a timestamp is sent: refused
    ):
        response = post(signature)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_signature"
    assert AgentRun.objects.count() == 0
    refused = AuditEvent.objects.filter(action="agents.webhook.refused")
    assert refused.count() == 7
    assert secret not in str(list(refused.values_list("details", flat=True)))
    unknown = post(sign(), "/api/v1/agents/999999/trigger/")
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "invalid_signature"
    assert refused.count() == 7

    good = post(sign())
    assert good.status_code == 202, good.content
    run = AgentRun.objects.get()
    assert (run.trigger, run.context, run.status) == ("webhook", body.decode(), "scheduled")


def test_a_big_webhook_body_is_refused_after_the_signature(user, nodes, agent_settings):
    from agents.services.runs import MAX_WEBHOOK_BODY

    agent, secret = services.agent_create(
        actor=user, name="hook", prompt="p", node_ids=[], trigger={"kind": "manual"}
    )
    body = b"x" * (MAX_WEBHOOK_BODY + 1)
    now = str(int(time.time()))
    response = APIClient().generic(
        "POST",
        f"/api/v1/agents/{agent.pk}/trigger/",
        body,  # type: ignore[arg-type]  # Django's test client takes bytes too
        content_type="text/plain",
        HTTP_X_CORTEX_SIGNATURE=services.signature_of(secret=secret, body=body, timestamp=now),
        HTTP_X_CORTEX_TIMESTAMP=now,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "webhook_body_too_large"
    assert AgentRun.objects.count() == 0


def test_a_node_the_owner_lost_fails_the_run(
    user, staff_user, nodes, agent_settings, fast_turns, exec_tool
):
    from django.contrib.auth.models import Group

    from mesh import services as mesh_services

    agent = _agent(user)
    mesh_services.node_revoke(
        actor=staff_user, node=nodes["box"], group=Group.objects.get(name="team")
    )
    run, thread = _drive(user, agent)
    thread.join(timeout=30)
    run.refresh_from_db()
    assert (run.status, run.error_code, run.session_id) == ("failed", "not_found", None)
    assert not ChatSession.objects.filter(owner=user).exists()
