"""mesh/services/presence.py: the stream holder's view of a node (policy, who holds the stream,
disconnects that only the current holder may report)."""

from __future__ import annotations

import pytest

from mesh.models import Node, NodeStatus
from mesh.services.nodes import node_deactivate, node_update
from mesh.services.presence import node_disconnected, node_hello, node_holds_stream, node_policy

pytestmark = pytest.mark.django_db


def test_node_policy_of_an_active_node_only(staff_user, make_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("p1", skill_config={"files": False})
    node = node_update(actor=staff_user, node=node, data={"sandbox_policy": {"mode": "strict"}})
    policy, skills = node_policy(node_id="p1")  # type: ignore[misc]
    assert policy["mode"] == "strict"
    assert skills["files"] is False and skills["shell"] is True
    assert node_policy(node_id="nope") is None
    node_deactivate(actor=staff_user, node=node)
    assert node_policy(node_id="p1") is None


def test_node_holds_stream_only_for_the_current_connection(staff_user, make_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("p2")
    assert node_holds_stream(node_id="p2", connection_id="") is False
    node_hello(node_id="p2", connection_id="conn-a")
    assert node_holds_stream(node_id="p2", connection_id="conn-a") is True
    node_hello(node_id="p2", connection_id="conn-b")  # the node reconnected elsewhere
    assert node_holds_stream(node_id="p2", connection_id="conn-a") is False
    assert node_holds_stream(node_id="p2", connection_id="conn-b") is True
    node_deactivate(actor=staff_user, node=node)
    assert node_holds_stream(node_id="p2", connection_id="conn-b") is False


def test_node_disconnected_by_a_stale_stream_changes_nothing(make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("p3")
    node_hello(node_id="p3", connection_id="old")
    node_hello(node_id="p3", connection_id="new")
    assert node_disconnected(node_id="p3", connection_id="old") is False
    assert Node.objects.get(node_id="p3").status == NodeStatus.ONLINE

    assert node_disconnected(node_id="p3", connection_id="new", reason="x" * 100) is True
    node = Node.objects.get(node_id="p3")
    assert node.status == NodeStatus.OFFLINE
    assert node.offline_reason == "x" * 64
    assert node.connection_id == ""
    assert node.disconnected_at is not None
    assert node_disconnected(node_id="p3", connection_id="new") is False
