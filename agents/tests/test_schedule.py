"""Firing ticks in the database: once per tick, catch-up rules, claiming, lost runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from agents import services
from agents.models import Agent, AgentRun
from agents.services import timing

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(user: Any, nodes: Any, agent_settings: Any) -> Agent:
    created, _ = services.agent_create(
        actor=user,
        name="a",
        prompt="p",
        node_ids=["box"],
        trigger={"kind": "interval", "seconds": 10},
    )
    return created


def _due(agent: Agent, when: datetime) -> None:
    Agent.objects.filter(pk=agent.pk).update(next_fire_at=when)


def test_a_due_tick_fires_once_however_often_it_is_looked_at(agent):
    tick = timezone.now() - timedelta(seconds=1)
    _due(agent, tick)
    first = services.ticks_fire()
    assert [(f.agent_id, f.scheduled_for, f.status) for f in first] == [
        (agent.pk, tick, "scheduled")
    ]
    assert services.ticks_fire() == []
    # A process that read the agent before the first one moved it still cannot fire it again.
    _due(agent, tick)
    assert services.ticks_fire() == []
    assert AgentRun.objects.filter(agent=agent).count() == 1
    agent.refresh_from_db()
    assert agent.next_fire_at == tick + timedelta(seconds=10)


def test_catch_up_skip_fires_nothing_after_downtime(agent, settings):
    settings.AGENT_LATE_GRACE_S = 5
    now = timezone.now()
    _due(agent, now - timedelta(seconds=97))  # the last missed tick was 7 s ago
    assert services.ticks_fire(now=now) == []
    assert AgentRun.objects.count() == 0
    agent.refresh_from_db()
    assert now < agent.next_fire_at <= now + timedelta(seconds=10)


def test_catch_up_once_fires_one_run_for_all_missed_ticks(agent, settings):
    settings.AGENT_LATE_GRACE_S = 5
    Agent.objects.filter(pk=agent.pk).update(catch_up="once")
    now = timezone.now()
    start = now - timedelta(seconds=97)
    _due(agent, start)
    fired = services.ticks_fire(now=now)
    assert len(fired) == 1
    run = AgentRun.objects.get()
    assert run.trigger == "catch_up"
    assert run.scheduled_for == start + timedelta(seconds=90)


def test_a_tick_while_the_last_run_is_unfinished_is_skipped(agent):
    tick = timezone.now() - timedelta(seconds=1)
    AgentRun.objects.create(agent=agent, trigger="manual", scheduled_for=tick - timedelta(hours=1))
    _due(agent, tick)
    services.ticks_fire()
    skipped = AgentRun.objects.get(scheduled_for=tick)
    assert (skipped.status, skipped.error_code) == ("skipped", "previous_run_unfinished")


def test_paused_agents_do_not_fire(agent, user):
    services.agent_set_paused(actor=user, agent=agent, paused=True)
    _due(agent, timezone.now() - timedelta(seconds=1))
    assert services.ticks_fire() == []


def test_claim_takes_each_run_once_and_reap_ends_silent_ones_lost(agent, settings):
    _due(agent, timezone.now() - timedelta(seconds=1))
    services.ticks_fire()
    assert len(services.runs_claim(worker="w1")) == 1
    assert services.runs_claim(worker="w2") == []
    run = AgentRun.objects.get()
    assert (run.status, run.claimed_by) == ("running", "w1")
    assert services.runs_reap_lost() == []
    AgentRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=3))
    lost = services.runs_reap_lost()
    assert [r.pk for r in lost] == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("lost", "lost")


def test_cron_ticks_follow_the_time_zone_across_dst():
    # 02:30 local does not exist on 2026-03-08 in New York; croniter moves past it.
    first = datetime(2026, 3, 7, 7, 30, tzinfo=UTC)  # 02:30 EST
    nxt = timing.next_after(
        kind="cron",
        after=first,
        interval=None,
        cron="30 2 * * *",
        tz="America/New_York",
        anchor=first,
    )
    assert nxt > first + timedelta(hours=23)


def test_due_ticks_after_a_very_long_downtime_are_bounded():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    first = now - timedelta(days=30)
    ticks, upcoming = timing.due_ticks(
        kind="interval", first=first, now=now, interval=60, cron="", tz="UTC"
    )
    assert len(ticks) == timing.MAX_WALK + 1
    assert ticks[-1] == now and upcoming == now + timedelta(seconds=60)
