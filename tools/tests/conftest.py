"""Fixtures of the tools tests: a group, nodes granted to it, and a chat context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group

from tools.base import ToolContext


@pytest.fixture
def team(user) -> Group:  # type: ignore[no-untyped-def]
    group = Group.objects.create(name="team")
    user.groups.add(group)
    return group


@pytest.fixture
def make_node(staff_user, team) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    """A node created and granted through the mesh services (as an admin would)."""
    from mesh import services as mesh_services

    def _make(
        node_id: str,
        *,
        skill_config: dict[str, Any] | None = None,
        capabilities: dict[str, Any] | None = None,
        grant: bool = True,
    ) -> Any:
        node, _invite = mesh_services.node_create(
            actor=staff_user, node_id=node_id, display_name=node_id, skill_config=skill_config
        )
        if capabilities is not None:
            # What the gRPC side records when the agent's stream says hello.
            mesh_services.node_hello(
                node_id=node_id, connection_id=f"test-{node_id}", capabilities=capabilities
            )
            node.refresh_from_db()
        if grant:
            mesh_services.node_grant(actor=staff_user, node=node, group=team)
        return node

    return _make


@pytest.fixture
def dev_node(make_node) -> Any:  # type: ignore[no-untyped-def]
    return make_node("dev", capabilities={"shell": True, "files": True})


@pytest.fixture
def context(user, dev_node) -> ToolContext:  # type: ignore[no-untyped-def]
    return ToolContext(
        user=user,
        chat_session_id=41,
        attached_nodes={"dev": "/srv/work"},
        message_id=7,
        tool_call_id="call_1",
    )
