"""Agent services called directly: update is checked as creation is, delete and rotate audited."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuditEvent
from agents import services
from agents.models import Agent, AgentRun
from agents.services.agents import InvalidUnattendedRule, UnknownNode
from agents.services.timing import InvalidTrigger
from preferences import crypto
from providers.errors import UnknownProvider

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(user: Any, nodes: Any, agent_settings: Any) -> Agent:
    created, _ = services.agent_create(
        actor=user,
        name="nightly",
        prompt="Check the disk.",
        node_ids=["box"],
        trigger={"kind": "interval", "seconds": 300},
        unattended={"allow": [{"node_id": "box", "tool": "mesh_terminal", "command": "df -h"}]},
    )
    return created


def test_agent_update_changes_fields_and_trigger_and_audits_the_field_names(user, agent):
    updated = services.agent_update(
        actor=user,
        agent=agent,
        data={
            "name": "renamed",
            "trigger": {"kind": "cron", "expression": "0 3 * * *", "timezone": "UTC"},
        },
    )
    agent.refresh_from_db()
    assert updated.name == agent.name == "renamed"
    assert agent.next_fire_at is not None and agent.next_fire_at.minute == 0
    event = AuditEvent.objects.get(action="agents.agent.updated")
    assert event.details["fields"] == ["name", "trigger"]
    assert event.details["node_ids"] == ["box"]


def test_agent_update_dropping_a_node_drops_its_unattended_rules(user, agent):
    services.agent_update(actor=user, agent=agent, data={"node_ids": []})
    agent.refresh_from_db()
    assert list(agent.nodes.all()) == [] and agent.unattended == []


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        ({"node_ids": ["secret-box"]}, UnknownNode, "unknown_node"),
        ({"node_ids": ["no-such-node"]}, UnknownNode, "unknown_node"),
        ({"trigger": {"kind": "interval", "seconds": 0}}, InvalidTrigger, "invalid_trigger"),
        (
            {"unattended": {"allow": [{"node_id": "secret-box", "tool": "mesh_terminal"}]}},
            InvalidUnattendedRule,
            "invalid_unattended_rule",
        ),
    ],
)
def test_agent_update_refuses_what_creation_refuses_and_changes_nothing(
    user, agent, data, error, code
):
    with pytest.raises(error) as exc:
        services.agent_update(actor=user, agent=agent, data={"name": "x", **data})
    assert exc.value.code == code
    agent.refresh_from_db()
    assert agent.name == "nightly" and [n.node_id for n in agent.nodes.all()] == ["box"]
    assert not AuditEvent.objects.filter(action="agents.agent.updated").exists()


def test_agent_update_refuses_a_provider_outside_the_owners_preferences(user, agent):
    with pytest.raises(UnknownProvider) as exc:
        services.agent_update(actor=user, agent=agent, data={"provider": "no-such"})
    assert exc.value.code == "unknown_provider"
    agent.refresh_from_db()
    assert agent.provider == ""


def test_agent_delete_removes_the_agent_and_its_runs_and_audits_it(user, agent):
    run = services.run_now(actor=user, agent=agent)
    agent_pk = agent.pk
    services.agent_delete(actor=user, agent=agent)
    assert not Agent.objects.filter(pk=agent_pk).exists()
    assert not AgentRun.objects.filter(pk=run.pk).exists()
    event = AuditEvent.objects.get(action="agents.agent.deleted")
    assert event.target_id == str(agent_pk) and event.details["name"] == "nightly"


def test_agent_rotate_secret_replaces_the_secret_and_never_records_it(user, agent):
    old = crypto.decrypt(Agent.objects.get(pk=agent.pk).webhook_secret)
    _, plain = services.agent_rotate_secret(actor=user, agent=agent)
    stored = Agent.objects.get(pk=agent.pk).webhook_secret
    assert plain != old and plain not in stored and crypto.decrypt(stored) == plain
    body = b"{}"
    with pytest.raises(services.InvalidSignature):
        services.webhook_trigger(
            agent_id=agent.pk, body=body, signature=services.signature_of(secret=old, body=body)
        )
    event = AuditEvent.objects.get(action="agents.agent.secret_rotated")
    assert event.details == {"agent_id": agent.pk}
    details = str(list(AuditEvent.objects.values_list("details", flat=True)))
    assert plain not in details and old not in details
