"""Run services called directly: the scheduler's wait, heartbeats, signed webhooks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.context import AuditContext
from accounts.models import AuditEvent
from agents import services
from agents.models import Agent, AgentRun
from agents.services.runs import MAX_WEBHOOK_BODY, WebhookBodyTooLarge, next_due_in, runs_beat

pytestmark = pytest.mark.django_db


def _agent(user: Any, name: str = "a", **trigger: Any) -> tuple[Agent, str]:
    return services.agent_create(
        actor=user,
        name=name,
        prompt="p",
        node_ids=["box"],
        trigger=trigger or {"kind": "manual"},
    )


def test_next_due_in_is_the_earliest_unpaused_tick(user, nodes, agent_settings):
    assert next_due_in() is None
    _agent(user, "manual")  # no tick at all
    assert next_due_in() is None
    now = timezone.now()
    soon, _ = _agent(user, "soon", kind="interval", seconds=60)
    later, _ = _agent(user, "later", kind="interval", seconds=60)
    Agent.objects.filter(pk=soon.pk).update(next_fire_at=now + timedelta(seconds=30))
    Agent.objects.filter(pk=later.pk).update(next_fire_at=now + timedelta(seconds=90))
    assert next_due_in(now=now) == 30.0
    services.agent_set_paused(actor=user, agent=soon, paused=True)
    assert next_due_in(now=now) == 90.0
    assert next_due_in(now=now + timedelta(seconds=120)) == 0.0  # overdue: now


def test_runs_beat_touches_only_this_workers_active_runs(user, nodes, agent_settings):
    mine, _ = _agent(user, "mine")
    theirs, _ = _agent(user, "theirs")
    done, _ = _agent(user, "done")
    runs = [services.run_now(actor=user, agent=a) for a in (mine, theirs, done)]
    claimed = services.runs_claim(worker="w1")
    assert sorted(claimed) == sorted(r.pk for r in runs)
    AgentRun.objects.filter(pk=runs[1].pk).update(claimed_by="w2")
    AgentRun.objects.filter(pk=runs[2].pk).update(status="succeeded")
    long_ago = timezone.now() - timedelta(hours=1)
    AgentRun.objects.update(heartbeat_at=long_ago)
    runs_beat(worker="w1", run_ids=[r.pk for r in runs])
    beats = dict(AgentRun.objects.values_list("pk", "heartbeat_at"))
    assert beats[runs[0].pk] > long_ago
    assert beats[runs[1].pk] == long_ago and beats[runs[2].pk] == long_ago
    runs_beat(worker="w1", run_ids=[])  # nothing to beat: no statement, no error


def test_webhook_trigger_starts_a_run_with_the_body_as_context(user, nodes, agent_settings):
    agent, secret = _agent(user)
    body = b'{"alert": "disk full"}'
    run = services.webhook_trigger(
        agent_id=str(agent.pk),
        body=body,
        signature=" " + services.signature_of(secret=secret, body=body) + "\n",
        audit_context=AuditContext(client_ip="198.51.100.4"),
    )
    assert (run.trigger, run.context, run.status) == ("webhook", body.decode(), "scheduled")
    event = AuditEvent.objects.get(action="agents.run.webhook")
    assert event.details["context_bytes"] == len(body) and event.client_ip == "198.51.100.4"
    assert secret not in str(event.details)


@pytest.mark.parametrize("agent_id", ["999999", "0", "-1", "abc", None, "1" * 30, "1.5"])
def test_webhook_trigger_unknown_agents_answer_like_a_bad_signature(
    user, nodes, agent_settings, agent_id
):
    _, secret = _agent(user)
    body = b"{}"
    with pytest.raises(services.InvalidSignature) as exc:
        services.webhook_trigger(
            agent_id=agent_id, body=body, signature=services.signature_of(secret=secret, body=body)
        )
    assert exc.value.code == "invalid_signature"
    assert not AuditEvent.objects.filter(action="agents.webhook.refused").exists()


def test_webhook_trigger_bad_signature_is_audited_without_the_secret(user, nodes, agent_settings):
    agent, secret = _agent(user)
    body = b"{}"
    with pytest.raises(services.InvalidSignature):
        services.webhook_trigger(
            agent_id=agent.pk, body=body, signature=services.signature_of(secret="x", body=body)
        )
    refused = AuditEvent.objects.get(action="agents.webhook.refused")
    assert refused.source == "webhook" and refused.details["reason"] == "bad_signature"
    assert secret not in str(refused.details)
    assert not AgentRun.objects.exists()


def test_webhook_trigger_refuses_a_big_body_and_a_paused_agent(user, nodes, agent_settings):
    agent, secret = _agent(user)
    big = b"x" * (MAX_WEBHOOK_BODY + 1)
    with pytest.raises(WebhookBodyTooLarge) as large:
        services.webhook_trigger(
            agent_id=agent.pk, body=big, signature=services.signature_of(secret=secret, body=big)
        )
    assert large.value.code == "webhook_body_too_large"
    services.agent_set_paused(actor=user, agent=agent, paused=True)
    with pytest.raises(services.AgentPaused):
        services.webhook_trigger(
            agent_id=agent.pk,
            body=b"{}",
            signature=services.signature_of(secret=secret, body=b"{}"),
        )
    assert not AgentRun.objects.exists()
