"""The sessions REST API: ownership, shapes, node attachment, approvals, events."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from sessions_app.models import ChatSession, Message, SessionNode, ToolApproval
from sessions_app.services.events import event_append

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(staff_user, user) -> Any:
    from mesh import services as mesh_services

    node, _invite = mesh_services.node_create(
        actor=staff_user, node_id="box-1", display_name="Box one"
    )
    group = Group.objects.create(name="devs")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=node, group=group)
    return node


@pytest.fixture
def other_node(staff_user) -> Any:
    from mesh import services as mesh_services

    node, _invite = mesh_services.node_create(
        actor=staff_user, node_id="secret-box", display_name="Not yours"
    )
    return node


def test_create_list_retrieve_own_only(user, user_client, make_user):
    other = make_user("bob@example.com")
    theirs = ChatSession.objects.create(owner=other, title="bob's")
    created = user_client.post("/api/v1/sessions/", {"title": "First"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["title"] == "First"
    assert body["approval_policy"] == "ask"
    assert (body["provider"], body["model"], body["is_archived"]) == ("", "", False)
    assert (body["tokens_in"], body["tokens_out"], body["tokens_total"]) == (0, 0, 0)

    listing = user_client.get("/api/v1/sessions/").json()
    assert listing["count"] == 1
    assert [s["id"] for s in listing["results"]] == [body["id"]]
    assert user_client.get(f"/api/v1/sessions/{body['id']}/").json()["id"] == body["id"]
    for path in (
        f"/api/v1/sessions/{theirs.pk}/",
        f"/api/v1/sessions/{theirs.pk}/messages/",
        f"/api/v1/sessions/{theirs.pk}/nodes/",
        f"/api/v1/sessions/{theirs.pk}/approvals/",
        f"/api/v1/sessions/{theirs.pk}/events/",
    ):
        response = user_client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    posted = user_client.post(
        f"/api/v1/sessions/{theirs.pk}/messages/", {"content": "hi"}, format="json"
    )
    assert posted.status_code == 404
    assert not Message.objects.filter(session=theirs).exists()
    assert user_client.delete(f"/api/v1/sessions/{theirs.pk}/").status_code == 404
    assert ChatSession.objects.filter(pk=theirs.pk).exists()


def test_anonymous_is_refused(anon_client):
    assert anon_client.get("/api/v1/sessions/").status_code in (401, 403)


def test_patch_and_delete(user, user_client):
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    patched = user_client.patch(
        f"/api/v1/sessions/{sid}/",
        {
            "title": "Renamed",
            "is_archived": True,
            "approval_policy": "auto",
            "provider": "anthropic",
            "model": "claude-x",
        },
        format="json",
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (body["title"], body["is_archived"], body["approval_policy"]) == (
        "Renamed",
        True,
        "auto",
    )
    assert (body["provider"], body["model"]) == ("anthropic", "claude-x")
    bad = user_client.patch(f"/api/v1/sessions/{sid}/", {"provider": "nope"}, format="json")
    assert bad.status_code == 400
    assert list(bad.json()["error"]["fields"]) == ["provider"]
    archived = user_client.post(
        f"/api/v1/sessions/{sid}/messages/", {"content": "x"}, format="json"
    )
    assert archived.status_code == 409
    assert archived.json()["error"]["code"] == "session_archived"
    assert not Message.objects.filter(session_id=sid).exists()
    assert user_client.delete(f"/api/v1/sessions/{sid}/").status_code == 204
    assert not ChatSession.objects.filter(pk=sid).exists()


def test_blank_message_is_rejected(user, user_client):
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    response = user_client.post(
        f"/api/v1/sessions/{sid}/messages/", {"content": "  "}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["content"]
    assert not Message.objects.exists()


def test_second_message_while_turn_runs_is_a_conflict(user, user_client):
    session = ChatSession.objects.create(owner=user)
    Message.objects.create(
        session=session, role="assistant", status="streaming", heartbeat_at=timezone.now()
    )
    response = user_client.post(
        f"/api/v1/sessions/{session.pk}/messages/", {"content": "again"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "turn_in_progress"
    assert Message.objects.filter(session=session).count() == 1


def test_attach_and_detach_nodes(user, user_client, node, other_node):
    sid = user_client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    attached = user_client.post(
        f"/api/v1/sessions/{sid}/nodes/",
        {"node_id": "box-1", "working_dir": "/srv/app"},
        format="json",
    )
    assert attached.status_code == 201
    assert attached.json()["node_id"] == "box-1"
    assert attached.json()["working_dir"] == "/srv/app"
    again = user_client.post(f"/api/v1/sessions/{sid}/nodes/", {"node_id": "box-1"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "node_already_attached"
    refused = user_client.post(
        f"/api/v1/sessions/{sid}/nodes/", {"node_id": "secret-box"}, format="json"
    )
    assert refused.status_code == 404
    assert SessionNode.objects.filter(session_id=sid).count() == 1
    listing = user_client.get(f"/api/v1/sessions/{sid}/nodes/").json()["results"]
    assert [(n["node_id"], n["display_name"], n["working_dir"]) for n in listing] == [
        ("box-1", "Box one", "/srv/app")
    ]
    assert user_client.delete(f"/api/v1/sessions/{sid}/nodes/box-1/").status_code == 204
    assert user_client.delete(f"/api/v1/sessions/{sid}/nodes/box-1/").status_code == 404
    assert not SessionNode.objects.filter(session_id=sid).exists()


def test_approvals_of_another_user_are_404(user, user_client, make_user):
    other = make_user("eve@example.com")
    theirs = ChatSession.objects.create(owner=other)
    message = Message.objects.create(session=theirs, role="assistant", status="streaming")
    approval = ToolApproval.objects.create(
        session=theirs,
        message=message,
        tool_call_id="c1",
        tool_name="write_test",
        expires_at=timezone.now(),
    )
    mine = ChatSession.objects.create(owner=user)
    for sid in (theirs.pk, mine.pk):
        response = user_client.post(f"/api/v1/sessions/{sid}/approvals/{approval.pk}/approve/")
        assert response.status_code == 404
    approval.refresh_from_db()
    assert approval.status == "pending"
    from accounts.models import AuditEvent

    assert not AuditEvent.objects.filter(action__startswith="sessions.").exists()


def test_events_replay_after_seq(user, user_client):
    session = ChatSession.objects.create(owner=user)
    for i in range(3):
        event_append(session_id=session.pk, type="message.delta", payload={"delta": str(i)})
    body = user_client.get(f"/api/v1/sessions/{session.pk}/events/?after_seq=1").json()
    assert body == {
        "last_seq": 3,
        "results": [
            {"type": "message.delta", "seq": 2, "delta": "1"},
            {"type": "message.delta", "seq": 3, "delta": "2"},
        ],
    }


def test_list_query_count(user, user_client, django_assert_max_num_queries):
    for i in range(5):
        ChatSession.objects.create(owner=user, title=f"s{i}")
    with django_assert_max_num_queries(6):
        response = user_client.get("/api/v1/sessions/")
    assert response.json()["count"] == 5
