"""Reads of the agents app: an agent and its runs belong to their owner only."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from agents.models import Agent, AgentRun
from cortex import errors

#: Runs shown beside each agent in lists (prefetched with a window, one query for all).
RECENT_RUNS = 5


def agent_list_for_user(*, user: User) -> QuerySet[Agent]:
    """The caller's own agents (others' are invisible, so they answer 404)."""
    if not (user and user.is_authenticated and user.is_active):
        return Agent.objects.none()
    recent = AgentRun.objects.order_by("-scheduled_for", "-id")[:RECENT_RUNS]
    return (
        Agent.objects.filter(owner=user)
        .prefetch_related("nodes", Prefetch("runs", queryset=recent, to_attr="recent_runs"))
        .order_by("name", "id")
    )


def agent_get_for_user(*, user: User, agent_id: int | str) -> Agent:
    agent = agent_list_for_user(user=user).filter(pk=agent_id).first()
    if agent is None:
        raise errors.NotFound("No such agent.")
    return agent


def run_list_for_agent(*, agent: Agent) -> QuerySet[AgentRun]:
    return AgentRun.objects.filter(agent=agent).order_by("-scheduled_for", "-id")


def run_get_for_agent(*, agent: Agent, run_id: int | str) -> AgentRun:
    """One run of an agent the caller already may see; any other id is NotFound."""
    try:
        pk = int(str(run_id))
    except ValueError:
        pk = 0
    run = AgentRun.objects.filter(agent=agent, pk=pk).first() if 0 < pk < 2**63 else None
    if run is None:
        raise errors.NotFound("No such run.")
    return run
