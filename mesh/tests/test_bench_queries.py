"""The node list costs the same number of queries with 10 nodes as with 1,000 (benchmark goal 7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mesh.models import Node, NodeGroupAccess, NodeInvite

pytestmark = pytest.mark.django_db


def _nodes(count: int, group: Group, staff_user) -> None:  # type: ignore[no-untyped-def]
    """Bulk rows shaped like registered nodes: a grant and an invite each."""
    start = Node.objects.count()
    Node.objects.bulk_create(
        [Node(node_id=f"n-{start + i:05d}", display_name=f"N {i}") for i in range(count)]
    )
    nodes = list(Node.objects.order_by("-pk")[:count])
    later = timezone.now() + timedelta(days=1)
    NodeGroupAccess.objects.bulk_create(
        [NodeGroupAccess(node=node, group=group, granted_by=staff_user) for node in nodes]
    )
    NodeInvite.objects.bulk_create(
        [NodeInvite(node=node, token_hash=f"{node.pk:064d}", expires_at=later) for node in nodes]
    )


def _page_queries(client, expected_rows: int) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/api/v1/nodes/?page=1")
    assert response.status_code == 200
    assert len(response.json()["results"]) == expected_rows
    return len(ctx.captured_queries)


@pytest.mark.parametrize("as_staff", [True, False])
def test_node_list_query_count_does_not_grow_with_nodes(
    as_staff, staff_client, staff_user, user_client, user
):  # type: ignore[no-untyped-def]
    group = Group.objects.create(name="fleet")
    user.groups.add(group)
    client = staff_client if as_staff else user_client
    _nodes(10, group, staff_user)
    small = _page_queries(client, 10)
    _nodes(990, group, staff_user)
    large = _page_queries(client, 50)
    assert large == small
