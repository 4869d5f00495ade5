"""Fixtures for sessions_app: a scripted LLM server and a user whose preferences point at it."""

from __future__ import annotations

from typing import Any

import pytest

from providers.tests.conftest import API_KEY, llm_server  # noqa: F401  # fixture
from providers.tests.llm_server import ScriptedLLM


@pytest.fixture
def fast_turns(settings: Any) -> Any:
    settings.SESSIONS_POLL_INTERVAL = 0.05
    settings.SESSIONS_HEARTBEAT = 0.5
    settings.SESSIONS_LLM_TIMEOUT = 5.0
    settings.SESSIONS_APPROVAL_TIMEOUT = 30.0
    return settings


def configure_llm(user: Any, server: ScriptedLLM, *, provider: str = "openai_compatible") -> None:
    """The user's own llm preference layer, written through the preferences service."""
    from preferences.services import layer_update

    base = server.url + "/v1" if provider == "openai_compatible" else server.url
    layer_update(
        actor=user,
        scope="user",
        kind="llm",
        user=user,
        data={"provider": provider, "base_url": base, "api_key": API_KEY, "model": "test-model"},
    )


@pytest.fixture
def box(user: Any, staff_user: Any) -> Any:
    """A node `box` that `user` may use through the group `team`; it never connects, so work
    sent to it stays queued and never runs."""
    from django.contrib.auth.models import Group

    from mesh import services as mesh_services

    node, _ = mesh_services.node_create(actor=staff_user, node_id="box", display_name="Box")
    group = Group.objects.create(name="team")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=node, group=group)
    return node
