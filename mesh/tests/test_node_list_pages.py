"""The user node list pages by ids first (`selectors.VisibleNodes`): same nodes, order, fields."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from mesh import services
from mesh.models import Node, NodeGroupAccess

pytestmark = pytest.mark.django_db


def _pages(client, size: int) -> tuple[list[dict[str, Any]], set[int]]:  # type: ignore[no-untyped-def]
    """Every page of the list in order, and the counts the pages reported."""
    rows: list[dict[str, Any]] = []
    counts: set[int] = set()
    page = 1
    while True:
        body = client.get(f"/api/v1/nodes/?page={page}&page_size={size}").json()
        rows += body["results"]
        counts.add(body["count"])
        if body["next"] is None:
            return rows, counts
        page += 1


def _fleet(staff_user) -> dict[str, Node]:  # type: ignore[no-untyped-def]
    """Seven nodes in an order unlike their pks, one of them seen with stats."""
    nodes = {}
    for name in ("n-g", "n-c", "n-a", "n-f", "n-b", "n-e", "n-d"):
        nodes[name], _ = services.node_create(
            actor=staff_user, node_id=name, display_name=name.upper()
        )
    seen = nodes["n-c"]
    seen.last_seen_at = timezone.now()
    seen.status, seen.version = "online", "1.2.3"
    seen.stats = {"cpu_percent": 12.5, "load_avg": [0.1, 0.2, 0.3]}
    seen.capabilities = {"shell": True, "files": False}
    seen.save()
    return nodes


@pytest.mark.parametrize("size", [1, 2, 3, 50])
def test_user_pages_hold_each_granted_node_once_in_order(size, user, user_client, staff_user):  # type: ignore[no-untyped-def]
    nodes = _fleet(staff_user)
    red, blue = Group.objects.create(name="red"), Group.objects.create(name="blue")
    user.groups.add(red, blue)
    for name in ("n-a", "n-c", "n-e", "n-g"):
        services.node_grant(actor=staff_user, node=nodes[name], group=red)
    for name in ("n-c", "n-d", "n-g"):  # n-c and n-g granted twice; n-b and n-f not at all
        services.node_grant(actor=staff_user, node=nodes[name], group=blue)
    rows, counts = _pages(user_client, size)
    assert [row["node_id"] for row in rows] == ["n-a", "n-c", "n-d", "n-e", "n-g"]
    assert counts == {5}
    for row in rows:  # the list row is what the detail view renders from the model
        assert row == user_client.get(f"/api/v1/nodes/{row['node_id']}/").json()
        assert list(row) == list(user_client.get(f"/api/v1/nodes/{row['node_id']}/").json())
    assert rows[1]["stats"] == {"cpu_percent": 12.5, "load_avg": [0.1, 0.2, 0.3]}
    assert rows[1]["available_skills"] == ["shell"]


def test_user_in_one_group_counts_its_grants(user, user_client, staff_user):  # type: ignore[no-untyped-def]
    nodes = _fleet(staff_user)
    ops = Group.objects.create(name="ops")
    user.groups.add(ops)
    other = Group.objects.create(name="other")  # grants to groups the user is not in
    for name in ("n-b", "n-d", "n-f"):
        services.node_grant(actor=staff_user, node=nodes[name], group=ops)
        services.node_grant(actor=staff_user, node=nodes[name], group=other)
    services.node_grant(actor=staff_user, node=nodes["n-a"], group=other)
    rows, counts = _pages(user_client, 2)
    assert [row["node_id"] for row in rows] == ["n-b", "n-d", "n-f"]
    assert counts == {3}


def test_user_without_grants_and_pages_past_the_end(user, user_client, staff_user):  # type: ignore[no-untyped-def]
    nodes = _fleet(staff_user)
    body = user_client.get("/api/v1/nodes/").json()
    assert (body["count"], body["results"]) == (0, [])
    ops = Group.objects.create(name="ops")
    user.groups.add(ops)
    services.node_grant(actor=staff_user, node=nodes["n-e"], group=ops)
    assert user_client.get("/api/v1/nodes/?page=2").status_code == 404
    assert user_client.get("/api/v1/nodes/?page=1").json()["count"] == 1


def test_admin_list_is_unchanged(staff_client, staff_user):  # type: ignore[no-untyped-def]
    _fleet(staff_user)
    rows, counts = _pages(staff_client, 3)
    assert [row["node_id"] for row in rows] == sorted(
        Node.objects.values_list("node_id", flat=True)
    )
    assert counts == {7}
    assert all("sandbox_policy" in row and "group_access" in row for row in rows)


def _plans(client, path: str) -> tuple[list[str], str]:  # type: ignore[no-untyped-def]
    """The node ids of one list page, and which id plan chose them (index walk or sort)."""
    with CaptureQueriesContext(connection) as ctx:
        body = client.get(path).json()
    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    plan = "walk" if "EXISTS" in sql else "sort" if "GROUP BY" in sql else "?"
    return [row["node_id"] for row in body["results"]], plan


def test_dense_and_sparse_grants_page_alike(user, user_client, make_user):  # type: ignore[no-untyped-def]
    """Both id plans (walk the node_id index; sort the grants) give the same pages."""
    # Explicit pks (the highest pk bounds the node count in the plan choice), in an order
    # unlike node_id. Of 40 nodes `dense` holds all but every fifth, `both` every third (some
    # twice for `user`, who is in both groups), `sparse` every eighth.
    Node.objects.bulk_create(
        [
            Node(pk=pk, node_id=f"n-{(pk * 17) % 40:02d}", display_name=f"N{pk}")
            for pk in range(1, 41)
        ]
    )
    nodes = {n.node_id: n for n in Node.objects.all()}
    names = sorted(nodes)
    dense, sparse, both = (Group.objects.create(name=n) for n in ("dense", "sparse", "both"))
    NodeGroupAccess.objects.bulk_create(
        [NodeGroupAccess(node=nodes[name], group=dense) for i, name in enumerate(names) if i % 5]
        + [NodeGroupAccess(node=nodes[name], group=sparse) for name in names[::8]]
        + [NodeGroupAccess(node=nodes[name], group=both) for name in names[::3]]
    )
    sparse_user = make_user()
    sparse_client = APIClient()
    sparse_client.force_authenticate(sparse_user)
    sparse_user.groups.add(sparse)
    user.groups.add(dense, both)
    seen = [name for i, name in enumerate(names) if i % 5 or i % 3 == 0]
    assert len(seen) == 35
    assert _plans(user_client, "/api/v1/nodes/?page=1&page_size=4") == (seen[:4], "walk")
    assert _plans(user_client, "/api/v1/nodes/?page=2&page_size=4") == (seen[4:8], "walk")
    # 35 visible of 40: the walk while a page ends by 35 * 35 / 40 (about 30) nodes in
    assert _plans(user_client, "/api/v1/nodes/?page=7&page_size=4") == (seen[24:28], "walk")
    assert _plans(user_client, "/api/v1/nodes/?page=8&page_size=4") == (seen[28:32], "sort")
    assert _plans(user_client, "/api/v1/nodes/?page=3&page_size=12") == (seen[24:], "sort")
    for size in (1, 4, 7, 50):
        rows, counts = _pages(user_client, size)
        assert [row["node_id"] for row in rows] == seen
        assert counts == {len(seen)}
    assert _plans(sparse_client, "/api/v1/nodes/?page=1&page_size=2") == (names[::8][:2], "sort")
    rows, counts = _pages(sparse_client, 2)
    assert [row["node_id"] for row in rows] == names[::8]
    assert counts == {5}
