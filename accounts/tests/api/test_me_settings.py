"""The settings page's APIs: my default approval policy, changing my password, audit filters."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from accounts.services import audit_record

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me/"
PASSWORD_URL = "/api/v1/users/me/password/"
PASSWORD = "correct horse battery"


def _signed_in(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    response = client.post(
        "/api/v1/auth/login/", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    return client


def test_default_approval_policy_is_mine_and_new_chats_start_with_it(user, user_client):
    assert user_client.get(ME).json()["default_approval_policy"] == "ask"
    response = user_client.patch(ME, {"default_approval_policy": "auto"}, format="json")
    assert response.status_code == 200
    assert response.json()["default_approval_policy"] == "auto"
    event = AuditEvent.objects.get(action="user.updated")
    assert event.details == {
        "before": {"default_approval_policy": "ask"},
        "after": {"default_approval_policy": "auto"},
    }
    created = user_client.post("/api/v1/sessions/", {}, format="json")
    assert created.status_code == 201
    assert created.json()["approval_policy"] == "auto"
    explicit = user_client.post("/api/v1/sessions/", {"approval_policy": "ask"}, format="json")
    assert explicit.json()["approval_policy"] == "ask"


def test_default_approval_policy_refuses_unknown_values(user_client, user):
    response = user_client.patch(ME, {"default_approval_policy": "yolo"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    user.refresh_from_db()
    assert user.default_approval_policy == "ask"
    assert not AuditEvent.objects.filter(action="user.updated").exists()


def test_change_password_keeps_this_session_and_is_audited(user):
    client = _signed_in(user)
    response = client.post(
        PASSWORD_URL,
        {"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        format="json",
    )
    assert response.status_code == 204
    assert client.get(ME).status_code == 200  # still signed in
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase")
    event = AuditEvent.objects.get(action="user.password_changed")
    assert event.actor == user
    assert "passphrase" not in str(event.details)


def test_change_password_needs_the_current_one(user):
    client = _signed_in(user)
    response = client.post(
        PASSWORD_URL,
        {"current_password": "not it", "new_password": "a brand new passphrase"},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "wrong_password"
    assert list(body["fields"]) == ["current_password"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    refused = AuditEvent.objects.get(action="user.password_change_refused")
    assert refused.details == {"reason": "wrong_current_password"}
    assert not AuditEvent.objects.filter(action="user.password_changed").exists()


def test_change_password_runs_djangos_validators(user):
    client = _signed_in(user)
    response = client.post(
        PASSWORD_URL, {"current_password": PASSWORD, "new_password": "123"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["new_password"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_change_password_is_refused_when_password_login_is_off(user, settings):
    client = _signed_in(user)
    settings.ALLOW_PASSWORD_LOGIN = False
    response = client.post(
        PASSWORD_URL,
        {"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "password_login_disabled"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_change_password_needs_sign_in():
    response = APIClient().post(
        PASSWORD_URL, {"current_password": "a", "new_password": "b"}, format="json"
    )
    assert response.status_code in (401, 403)


def test_audit_filters_by_node_actor_email_and_time(staff_client, staff_user, user):
    audit_record(actor=staff_user, action="node.created", target_type="node", target_id="n1")
    audit_record(actor=staff_user, action="node.created", target_type="node", target_id="n2")
    audit_record(actor=user, action="node.grant", target_type="node", target_id="n1")
    audit_record(actor=user, action="task.dispatched", target_type="task", target_id="n1")

    def actions(**params):  # type: ignore[no-untyped-def]
        response = staff_client.get("/api/v1/audit/", params)
        assert response.status_code == 200
        return sorted((e["action"], e["target_id"]) for e in response.json()["results"])

    assert actions(node="n1") == [("node.created", "n1"), ("node.grant", "n1")]
    assert actions(actor_email="ALICE") == [("node.grant", "n1"), ("task.dispatched", "n1")]
    assert actions(node="n1", action="node.g") == [("node.grant", "n1")]
    assert actions(since="2999-01-01T00:00:00Z") == []
    bad = staff_client.get("/api/v1/audit/", {"since": "yesterday"})
    assert bad.status_code == 400
