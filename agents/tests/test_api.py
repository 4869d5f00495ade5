"""The agents REST API: ownership, validation, run now, runs, pause/resume, secrets."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuditEvent
from agents.models import Agent, AgentRun
from agents.tests.conftest import agent_body

pytestmark = pytest.mark.django_db


def _create(client: Any, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/agents/", agent_body(**extra), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_shows_the_secret_once_and_stores_it_encrypted(user_client, nodes, agent_settings):
    created = _create(
        user_client,
        unattended={"allow": [{"node_id": "box", "tool": "mesh_terminal", "command": "df -h"}]},
    )
    secret = created["webhook_secret"]
    assert len(secret) >= 40
    assert created["node_ids"] == ["box"]
    assert created["trigger"] == {"kind": "interval", "seconds": 300}
    assert created["unattended"] == {
        "allow": [{"node_id": "box", "tool": "mesh_terminal", "command": "df -h"}]
    }
    assert created["next_fire_at"] is not None
    assert created["last_runs"] == []
    row = Agent.objects.get(pk=created["id"])
    assert secret not in row.webhook_secret
    detail = user_client.get(f"/api/v1/agents/{created['id']}/").json()
    listing = user_client.get("/api/v1/agents/").json()
    assert "webhook_secret" not in detail
    assert secret not in str(listing) and secret not in str(detail)
    audit = AuditEvent.objects.get(action="agents.agent.created")
    assert secret not in str(audit.details)


def test_another_users_agent_is_404(user_client, make_user, nodes, agent_settings):
    from rest_framework.test import APIClient

    created = _create(user_client)
    stranger = APIClient()
    stranger.force_authenticate(make_user("mallory@example.com"))
    base = f"/api/v1/agents/{created['id']}/"
    assert stranger.get(base).status_code == 404
    assert stranger.patch(base, {"name": "x"}, format="json").status_code == 404
    assert stranger.delete(base).status_code == 404
    assert stranger.post(base + "run/").status_code == 404
    assert stranger.get(base + "runs/").status_code == 404
    assert stranger.post(base + "pause/").status_code == 404
    assert stranger.post(base + "rotate-secret/").status_code == 404
    assert stranger.get("/api/v1/agents/").json()["count"] == 0
    assert AgentRun.objects.count() == 0
    assert not Agent.objects.get(pk=created["id"]).paused


def test_nodes_must_be_usable_by_the_owner(user_client, nodes, agent_settings):
    for node_ids in (["secret-box"], ["nope"], ["box", "secret-box"]):
        response = user_client.post("/api/v1/agents/", agent_body(node_ids=node_ids), format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "unknown_node"
    assert Agent.objects.count() == 0


@pytest.mark.parametrize(
    ("trigger", "code"),
    [
        ({"kind": "interval", "seconds": 30}, "invalid_trigger"),
        ({"kind": "cron", "expression": "* * * *", "timezone": "UTC"}, "invalid_trigger"),
        ({"kind": "cron", "expression": "*/5 * * * * *", "timezone": "UTC"}, "invalid_trigger"),
        ({"kind": "cron", "expression": "61 * * * *", "timezone": "UTC"}, "invalid_trigger"),
        (
            {"kind": "cron", "expression": "*/5 * * * *", "timezone": "Mars/Olympus"},
            "invalid_trigger",
        ),
        ({"kind": "interval"}, "invalid_input"),
        ({"kind": "weekly"}, "invalid_input"),
    ],
)
def test_bad_triggers_are_refused(user_client, nodes, settings, trigger, code):
    settings.AGENT_MIN_INTERVAL_S = 60
    response = user_client.post("/api/v1/agents/", agent_body(trigger=trigger), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert Agent.objects.count() == 0


def test_cron_in_a_time_zone(user_client, nodes, settings):
    settings.AGENT_MIN_INTERVAL_S = 60
    created = _create(
        user_client, trigger={"kind": "cron", "expression": "30 9 * * *", "timezone": "Asia/Tokyo"}
    )
    agent = Agent.objects.get(pk=created["id"])
    from zoneinfo import ZoneInfo

    local = agent.next_fire_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute, local.second) == (9, 30, 0)


@pytest.mark.parametrize(
    "rule",
    [
        {"node_id": "other", "tool": "mesh_terminal", "command": "ls"},
        {"node_id": "box", "tool": "no_such_tool", "command": "ls"},
        {"node_id": "box", "tool": "mesh_terminal"},
        {"node_id": "box", "tool": "mesh_terminal", "command": "ls", "action": "list"},
        {"node_id": "box", "tool": "mesh_terminal", "command": "*"},
        {"node_id": "box", "tool": "mesh_terminal", "command": "@sensitive"},
    ],
)
def test_bad_unattended_rules_are_refused(user_client, nodes, agent_settings, rule):
    response = user_client.post(
        "/api/v1/agents/", agent_body(unattended={"allow": [rule]}), format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("invalid_unattended_rule", "invalid_input")
    assert Agent.objects.count() == 0


def test_provider_must_pass_the_owners_preferences(user_client, user, nodes, agent_settings):
    from preferences.services import layer_update

    layer_update(
        actor=user,
        scope="user",
        kind="llm",
        user=user,
        data={"provider": "openai_compatible", "model": "m1"},
    )
    ok = user_client.post(
        "/api/v1/agents/", agent_body(provider="openai_compatible", model="m2"), format="json"
    )
    assert ok.status_code == 201, ok.content
    bad = user_client.post("/api/v1/agents/", agent_body(provider="no-such"), format="json")
    assert bad.status_code == 400


def test_update_pause_resume_delete(user_client, nodes, agent_settings):
    created = _create(user_client)
    base = f"/api/v1/agents/{created['id']}/"
    changed = user_client.patch(
        base, {"name": "renamed", "trigger": {"kind": "interval", "seconds": 600}}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["name"] == "renamed"
    assert changed.json()["trigger"] == {"kind": "interval", "seconds": 600}
    paused = user_client.post(base + "pause/").json()
    assert paused["paused"] is True and paused["next_fire_at"] is None
    refused = user_client.post(base + "run/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "agent_paused"
    resumed = user_client.post(base + "resume/").json()
    assert resumed["paused"] is False and resumed["next_fire_at"] is not None
    assert user_client.delete(base).status_code == 204
    assert not Agent.objects.filter(pk=created["id"]).exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"agents.agent.updated", "agents.agent.paused", "agents.agent.resumed"} <= actions
    assert "agents.agent.deleted" in actions


def test_run_now_is_202_and_runs_are_paginated(user_client, nodes, agent_settings):
    created = _create(user_client)
    base = f"/api/v1/agents/{created['id']}/"
    response = user_client.post(base + "run/")
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "scheduled" and run["trigger"] == "manual"
    assert set(run) >= {
        "id",
        "status",
        "trigger",
        "scheduled_for",
        "started_at",
        "finished_at",
        "session_id",
        "score",
    }
    again = user_client.post(base + "run/")
    assert again.status_code == 429
    assert again.json()["error"]["code"] == "run_too_soon"
    page = user_client.get(base + "runs/").json()
    assert page["count"] == 1 and page["results"][0]["id"] == run["id"]
    assert set(page) == {"count", "next", "previous", "results"}


def test_rotate_secret(user_client, nodes, agent_settings):
    created = _create(user_client)
    rotated = user_client.post(f"/api/v1/agents/{created['id']}/rotate-secret/").json()
    assert rotated["webhook_secret"] != created["webhook_secret"]


def test_list_query_count(user_client, nodes, agent_settings, django_assert_max_num_queries):
    for n in range(3):
        _create(user_client, name=f"a{n}")
    with django_assert_max_num_queries(8):
        response = user_client.get("/api/v1/agents/")
    assert response.json()["count"] == 3
