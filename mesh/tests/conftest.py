"""Fixtures of the mesh tests (node client and server in mesh/tests/meshkit.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from mesh.tests.meshkit import mesh_address, mesh_settings  # noqa: F401  # fixtures


@pytest.fixture
def make_node(staff_user):  # type: ignore[no-untyped-def]
    """Create a node through the service; returns (node, invite token)."""
    from mesh import services

    def _make(node_id: str = "node-a", **extra: Any):  # type: ignore[no-untyped-def]
        return services.node_create(
            actor=staff_user, node_id=node_id, display_name=node_id.title(), **extra
        )

    return _make


@pytest.fixture
def grant(staff_user):  # type: ignore[no-untyped-def]
    """Put `user` in a group with access to `node`."""
    from mesh import services

    def _grant(user, node, name: str = "ops"):  # type: ignore[no-untyped-def]
        group, _ = Group.objects.get_or_create(name=name)
        user.groups.add(group)
        services.node_grant(actor=staff_user, node=node, group=group)
        return group

    return _grant
