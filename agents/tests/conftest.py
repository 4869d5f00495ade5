"""Fixtures for agents: a node the user may use, another they may not, fast limits."""

from __future__ import annotations

from typing import Any

import pytest

from sessions_app.tests.conftest import fast_turns, llm_server  # noqa: F401  # shared fixtures


@pytest.fixture
def agent_settings(settings: Any) -> Any:
    settings.AGENT_MIN_INTERVAL_S = 1
    settings.AGENT_LOST_AFTER_S = 2
    settings.AGENT_LATE_GRACE_S = 30
    return settings


@pytest.fixture
def nodes(user: Any, staff_user: Any) -> dict[str, Any]:
    """`box` granted to the user's group; `secret-box` granted to nobody."""
    from django.contrib.auth.models import Group

    from mesh import services as mesh_services

    box, _ = mesh_services.node_create(actor=staff_user, node_id="box", display_name="Box")
    other, _ = mesh_services.node_create(
        actor=staff_user, node_id="secret-box", display_name="Secret"
    )
    group = Group.objects.create(name="team")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=box, group=group)
    return {"box": box, "other": other}


def agent_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "nightly",
        "prompt": "Check the disk.",
        "node_ids": ["box"],
        "trigger": {"kind": "interval", "seconds": 300},
    }
    body.update(extra)
    return body
