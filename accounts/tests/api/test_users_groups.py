"""Me, admin users, groups and memberships; every change audited, escalation refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from accounts.services import token_create
from accounts.tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def test_me_reads_profile(user_client, user):
    group = GroupFactory.create(name="ops")
    user.groups.add(group)
    body = user_client.get("/api/v1/users/me/").json()
    assert body["id"] == user.pk
    assert body["email"] == "alice@example.com"
    assert body["is_staff"] is False
    assert body["groups"] == [{"id": group.pk, "name": "ops"}]
    assert "password" not in body


def test_me_patch_display_name(user_client, user):
    response = user_client.patch("/api/v1/users/me/", {"display_name": "Al"}, format="json")
    assert response.status_code == 200
    assert response.json()["display_name"] == "Al"
    user.refresh_from_db()
    assert user.display_name == "Al"
    event = AuditEvent.objects.get(action="user.updated")
    assert event.details == {"before": {"display_name": ""}, "after": {"display_name": "Al"}}


@pytest.mark.parametrize(
    "body",
    [
        {"is_staff": True},
        {"display_name": "x", "groups": [1]},
        {"email": "boss@example.com"},
        {"is_superuser": True},
    ],
)
def test_me_patch_refuses_and_audits_privilege_escalation(user_client, user, body):
    response = user_client.patch("/api/v1/users/me/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "field_not_writable"
    refused = sorted(set(body) - {"display_name"})
    assert sorted(error["fields"]) == refused
    user.refresh_from_db()
    assert user.is_staff is False and user.is_superuser is False
    assert user.email == "alice@example.com" and user.display_name == ""
    assert list(user.groups.all()) == []
    event = AuditEvent.objects.get()
    assert event.action == "user.privilege_escalation_attempt"
    assert event.actor == user
    assert event.details == {"fields": refused}


def test_admin_creates_user_with_password_who_can_sign_in(staff_client, staff_user):
    response = staff_client.post(
        "/api/v1/admin/users/",
        {"email": "New@Example.com", "password": "a long new passphrase", "display_name": "N"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new@example.com"
    assert body["is_staff"] is False and body["is_active"] is True
    assert "password" not in body
    event = AuditEvent.objects.get(action="user.created")
    assert event.actor == staff_user
    assert event.details == {"email": "new@example.com", "is_staff": False, "sign_in": "password"}
    login = APIClient().post(
        "/api/v1/auth/login/",
        {"email": "new@example.com", "password": "a long new passphrase"},
        format="json",
    )
    assert login.status_code == 200


def test_admin_create_without_password_and_duplicates(staff_client):
    ok = staff_client.post("/api/v1/admin/users/", {"email": "oidc@example.com"}, format="json")
    assert ok.status_code == 201
    assert not User.objects.get(email="oidc@example.com").has_usable_password()
    dup = staff_client.post("/api/v1/admin/users/", {"email": "OIDC@example.com"}, format="json")
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "email_taken"
    weak = staff_client.post(
        "/api/v1/admin/users/", {"email": "w@example.com", "password": "123"}, format="json"
    )
    assert weak.status_code == 400
    assert "password" in weak.json()["error"]["fields"]
    assert not User.objects.filter(email="w@example.com").exists()
    assert AuditEvent.objects.filter(action="user.created").count() == 1


def test_admin_updates_user(staff_client, user):
    response = staff_client.patch(
        f"/api/v1/admin/users/{user.pk}/", {"is_staff": True, "display_name": "A"}, format="json"
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.is_staff and user.is_superuser and user.display_name == "A"
    event = AuditEvent.objects.get(action="user.updated")
    assert event.details == {
        "before": {"display_name": "", "is_staff": False},
        "after": {"display_name": "A", "is_staff": True},
        "fields": ["display_name", "is_staff"],
    }


def test_deactivation_ends_sessions_and_tokens_at_once(staff_client, user):
    browser = APIClient()
    assert (
        browser.post(
            "/api/v1/auth/login/",
            {"email": "alice@example.com", "password": PASSWORD},
            format="json",
        ).status_code
        == 200
    )
    _, token = token_create(actor=user, user=user, name="t")
    scripted = APIClient()
    scripted.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert scripted.get("/api/v1/users/me/").status_code == 200
    assert Session.objects.count() == 1

    response = staff_client.delete(f"/api/v1/admin/users/{user.pk}/")
    assert response.status_code == 204
    assert Session.objects.count() == 0
    assert browser.get("/api/v1/users/me/").status_code == 401
    assert scripted.get("/api/v1/users/me/").status_code == 401
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.details == {"email": "alice@example.com", "revoked_count": 1, "sessions_ended": 1}


def test_patch_is_active_false_deactivates(staff_client, user):
    response = staff_client.patch(
        f"/api/v1/admin/users/{user.pk}/", {"is_active": False}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert AuditEvent.objects.filter(action="user.deactivated").count() == 1


def test_admin_cannot_deactivate_self(staff_client, staff_user):
    response = staff_client.delete(f"/api/v1/admin/users/{staff_user.pk}/")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "cannot_deactivate_self"
    staff_user.refresh_from_db()
    assert staff_user.is_active
    assert not AuditEvent.objects.exists()


def test_non_admin_cannot_use_admin_users(user_client, user):
    assert user_client.get("/api/v1/admin/users/").status_code == 403
    assert (
        user_client.post(
            "/api/v1/admin/users/", {"email": "z@example.com"}, format="json"
        ).status_code
        == 403
    )
    assert not User.objects.filter(email="z@example.com").exists()


def test_admin_user_list_query_count(staff_client, django_assert_num_queries):
    UserFactory.create_batch(4)
    with django_assert_num_queries(3):
        assert staff_client.get("/api/v1/admin/users/").json()["count"] == 5


def test_group_crud_and_membership(staff_client, staff_user, user):
    created = staff_client.post("/api/v1/admin/groups/", {"name": "ops"}, format="json")
    assert created.status_code == 201
    gid = created.json()["id"]
    assert created.json() == {"id": gid, "name": "ops", "members": []}
    dup = staff_client.post("/api/v1/admin/groups/", {"name": "OPS"}, format="json")
    assert dup.status_code == 409

    added = staff_client.post(
        f"/api/v1/admin/groups/{gid}/members/", {"user": user.pk}, format="json"
    )
    assert added.status_code == 200
    assert added.json()["members"] == [user.pk]
    assert list(user.groups.values_list("name", flat=True)) == ["ops"]
    missing = staff_client.post(
        f"/api/v1/admin/groups/{gid}/members/", {"user": 99999}, format="json"
    )
    assert missing.status_code == 404

    renamed = staff_client.patch(
        f"/api/v1/admin/groups/{gid}/", {"name": "operators"}, format="json"
    )
    assert renamed.json()["name"] == "operators"

    removed = staff_client.delete(f"/api/v1/admin/groups/{gid}/members/{user.pk}/")
    assert removed.status_code == 204
    assert user.groups.count() == 0

    assert staff_client.delete(f"/api/v1/admin/groups/{gid}/").status_code == 204
    assert not Group.objects.filter(pk=gid).exists()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == [
        "group.created",
        "group.member_added",
        "group.updated",
        "group.member_removed",
        "group.deleted",
    ]
    added_event = AuditEvent.objects.get(action="group.member_added")
    assert added_event.details == {"group": "ops", "user": user.pk, "email": user.email}


def test_groups_admin_only_and_unknown_group_404(user_client, staff_client):
    assert user_client.get("/api/v1/admin/groups/").status_code == 403
    assert staff_client.get("/api/v1/admin/groups/4242/").status_code == 404
    assert (
        staff_client.post(
            "/api/v1/admin/groups/4242/members/", {"user": 1}, format="json"
        ).status_code
        == 404
    )


def test_group_list_query_count(staff_client, django_assert_num_queries):
    for _ in range(3):
        g = GroupFactory.create()
        g.user_set.add(UserFactory.create())
    with django_assert_num_queries(3):
        assert staff_client.get("/api/v1/admin/groups/").json()["count"] == 3


def test_audit_list_filters(staff_client, user_client):
    user_client.patch("/api/v1/users/me/", {"is_staff": True}, format="json")
    body = staff_client.get("/api/v1/audit/?action=user.").json()
    assert [e["action"] for e in body["results"]] == ["user.privilege_escalation_attempt"]
    assert staff_client.get("/api/v1/audit/?action=auth.").json()["count"] == 0
