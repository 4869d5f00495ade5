"""REST: nodes, admin and user views, grants, policy updates."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditEvent
from mesh.models import Node, NodeGroupAccess, NodeInvite
from mesh.services._common import sha256_hex

pytestmark = pytest.mark.django_db


def test_admin_creates_node_and_sees_invite_token_once(staff_client, staff_user):
    response = staff_client.post(
        "/api/v1/nodes/",
        {"node_id": "build-1", "display_name": "Build 1", "skill_config": {"browser": True}},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    token = body["invite_token"]
    assert token.startswith("cni_")
    assert body["node_id"] == "build-1"
    assert body["skill_config"] == {
        "shell": True,
        "files": True,
        "browser": True,
        "max_concurrent_tasks": 2,
    }
    assert body["invite"]["state"] == "pending"
    invite = NodeInvite.objects.get(node__node_id="build-1")
    assert invite.token_hash == sha256_hex(token)
    detail = staff_client.get("/api/v1/nodes/build-1/").json()
    assert "invite_token" not in detail
    assert token not in str(detail)
    listed = staff_client.get("/api/v1/nodes/").json()
    assert token not in str(listed)
    event = AuditEvent.objects.get(action="node.create")
    assert (event.actor_id, event.target_id) == (staff_user.pk, "build-1")
    assert token not in str(event.details)


def test_duplicate_and_invalid_node_ids_are_refused(staff_client, make_node):
    make_node("dup")
    response = staff_client.post(
        "/api/v1/nodes/", {"node_id": "dup", "display_name": "x"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "node_exists"
    response = staff_client.post(
        "/api/v1/nodes/", {"node_id": "Bad Id", "display_name": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "node_id" in response.json()["error"]["fields"]
    response = staff_client.post(
        "/api/v1/nodes/",
        {"node_id": "ok", "display_name": "x", "skill_config": {"gpu": True}},
        format="json",
    )
    assert response.status_code == 400
    assert Node.objects.filter(node_id="ok").count() == 0


def test_users_see_only_granted_nodes_in_user_view(user_client, user, make_node, grant):
    visible, _ = make_node("visible")
    make_node("hidden")
    grant(user, visible)
    body = user_client.get("/api/v1/nodes/").json()
    assert [n["node_id"] for n in body["results"]] == ["visible"]
    node = body["results"][0]
    for admin_field in ("skill_config", "sandbox_policy", "group_access", "invite", "invite_token"):
        assert admin_field not in node
    assert node["available_skills"] == ["shell", "files"]
    assert user_client.get("/api/v1/nodes/visible/").status_code == 200
    hidden = user_client.get("/api/v1/nodes/hidden/")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "not_found"
    assert user_client.get("/api/v1/nodes/nope/").status_code == 404


def test_non_admins_cannot_manage_nodes(user_client, user, make_node, grant):
    node, _ = make_node("n1")
    grant(user, node)
    assert (
        user_client.post(
            "/api/v1/nodes/", {"node_id": "x", "display_name": "x"}, format="json"
        ).status_code
        == 403
    )
    assert (
        user_client.patch("/api/v1/nodes/n1/", {"display_name": "x"}, format="json").status_code
        == 403
    )
    assert user_client.delete("/api/v1/nodes/n1/").status_code == 403
    assert Node.objects.get(node_id="n1").display_name == "N1"


def test_admin_actions_on_a_node_the_caller_cannot_see_answer_404(
    user_client, user, make_node, grant, anon_client
):
    """404 like every other route: a 403 would confirm the node exists."""
    visible, _ = make_node("mine")
    grant(user, visible)
    make_node("theirs")
    calls = [
        ("patch", "/api/v1/nodes/{}/", {"display_name": "x"}),
        ("delete", "/api/v1/nodes/{}/", None),
        ("post", "/api/v1/nodes/{}/access/", {"group": 1}),
        ("delete", "/api/v1/nodes/{}/access/1/", None),
        ("post", "/api/v1/nodes/{}/invite/", None),
        ("post", "/api/v1/nodes/{}/rotate-credential/", None),
        ("get", "/api/v1/nodes/{}/bundle/", None),
    ]
    for method, path, body in calls:
        for node_id, status in (("theirs", 404), ("no-such-node", 404), ("mine", 403)):
            response = getattr(user_client, method)(path.format(node_id), body, format="json")
            assert response.status_code == status, (method, path, node_id)
            expected = "not_found" if status == 404 else "permission_denied"
            assert response.json()["error"]["code"] == expected
        assert getattr(anon_client, method)(path.format("theirs"), body).status_code == 401
    assert Node.objects.get(node_id="theirs").display_name == "Theirs"
    assert not AuditEvent.objects.filter(action__in=["node.invite", "node.bundle_issued"]).exists()


def test_anonymous_is_refused(anon_client, make_node):
    make_node("n1")
    assert anon_client.get("/api/v1/nodes/").status_code in (401, 403)


def test_admin_patches_policy_and_skills(staff_client, make_node):
    make_node("n1")
    policy = {
        "mode": "strict",
        "allowed_commands": ["echo", "ls"],
        "denied_commands": ["rm"],
        "sensitive_commands": [],
    }
    response = staff_client.patch(
        "/api/v1/nodes/n1/",
        {"sandbox_policy": policy, "skill_config": {"max_concurrent_tasks": 5}},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["sandbox_policy"] == policy
    assert body["skill_config"]["max_concurrent_tasks"] == 5
    assert body["skill_config"]["shell"] is True
    node = Node.objects.get(node_id="n1")
    assert node.sandbox_policy == policy
    event = AuditEvent.objects.get(action="node.update")
    assert event.details["changed"]["sandbox_policy"] == policy
    bad = staff_client.patch(
        "/api/v1/nodes/n1/", {"sandbox_policy": {"mode": "chaos"}}, format="json"
    )
    assert bad.status_code == 400
    assert Node.objects.get(node_id="n1").sandbox_policy == policy


def test_grant_and_revoke(staff_client, staff_user, user, user_client, make_node):
    make_node("n1")
    group = Group.objects.create(name="devs")
    user.groups.add(group)
    assert user_client.get("/api/v1/nodes/n1/").status_code == 404
    response = staff_client.post("/api/v1/nodes/n1/access/", {"group": group.pk}, format="json")
    assert response.status_code == 201
    assert response.json()["group"] == group.pk
    assert user_client.get("/api/v1/nodes/n1/").status_code == 200
    detail = staff_client.get("/api/v1/nodes/n1/").json()
    assert [g["name"] for g in detail["group_access"]] == ["devs"]
    assert (
        staff_client.post("/api/v1/nodes/n1/access/", {"group": 99999}, format="json").status_code
        == 404
    )
    assert staff_client.delete(f"/api/v1/nodes/n1/access/{group.pk}/").status_code == 204
    assert user_client.get("/api/v1/nodes/n1/").status_code == 404
    assert staff_client.delete(f"/api/v1/nodes/n1/access/{group.pk}/").status_code == 404
    actions = list(
        AuditEvent.objects.filter(action__in=["node.grant", "node.revoke"]).values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["node.grant", "node.revoke"]
    assert NodeGroupAccess.objects.count() == 0


def test_delete_node(staff_client, make_node):
    make_node("n1")
    assert staff_client.delete("/api/v1/nodes/n1/").status_code == 204
    assert not Node.objects.filter(node_id="n1").exists()
    assert AuditEvent.objects.filter(action="node.delete", target_id="n1").count() == 1


def test_new_invite_revokes_the_old_one(staff_client, make_node):
    _, first = make_node("n1")
    response = staff_client.post("/api/v1/nodes/n1/invite/")
    assert response.status_code == 201
    second = response.json()["invite_token"]
    assert second != first
    invites = NodeInvite.objects.filter(node__node_id="n1")
    states = {i.token_hash: i.revoked_at is not None for i in invites}
    assert states == {sha256_hex(first): True, sha256_hex(second): False}


def test_node_lists_use_constant_queries(
    staff_client, user_client, user, make_node, grant, django_assert_num_queries
):
    for i in range(3):
        node, _ = make_node(f"n{i}")
        grant(user, node, name=f"g{i}")
    # count, nodes, grants (with groups), invites
    with django_assert_num_queries(4):
        assert len(staff_client.get("/api/v1/nodes/").json()["results"]) == 3
    for i in range(3, 6):
        node, _ = make_node(f"n{i}")
        grant(user, node, name=f"g{i}")
    with django_assert_num_queries(4):
        assert len(staff_client.get("/api/v1/nodes/").json()["results"]) == 6
    with django_assert_num_queries(2):
        assert len(user_client.get("/api/v1/nodes/").json()["results"]) == 6


def test_rotate_credential_is_requested_and_audited(staff_client, user_client, make_node):
    make_node("n1")
    response = staff_client.post("/api/v1/nodes/n1/rotate-credential/")
    assert response.status_code == 202
    assert response.json() == {"node_id": "n1", "status": "requested"}
    assert Node.objects.get(node_id="n1").rotation_requested_at is not None
    assert AuditEvent.objects.filter(action="node.credential_rotate").count() == 1
    assert user_client.post("/api/v1/nodes/n1/rotate-credential/").status_code == 404


@pytest.mark.django_db
def test_user_node_output_fast_path_matches_the_declared_fields(make_node):
    """`NodeUserOutput` reads attributes directly; it must render what DRF's walk renders."""
    from django.utils import timezone
    from rest_framework import serializers

    from mesh.api.serializers import NodeUserOutput

    never, _ = make_node("never-seen")
    seen, _ = make_node("seen", skill_config={"shell": True, "files": True, "browser": True})
    seen.last_seen_at = timezone.now()
    seen.stats = {"cpu_percent": 12.5, "cpu_per_core": [1.0, 2.0], "load_avg": [0.1, 0.2, 0.3]}
    seen.capabilities = {"shell": True, "files": True, "browser": False}
    seen.status, seen.version = "online", "1.2.3"
    for node in (never, seen):
        fast = NodeUserOutput(node).data
        walked = serializers.Serializer.to_representation(NodeUserOutput(), node)
        assert fast == walked
        assert list(fast) == list(walked)  # same keys in the same order
    assert NodeUserOutput(seen).data["available_skills"] == ["shell", "files"]
