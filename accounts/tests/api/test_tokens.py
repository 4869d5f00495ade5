"""Personal API tokens: shown once, stored hashed, accepted as Bearer, expiry and revocation."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, AuditEvent
from accounts.services import token_create, user_deactivate

pytestmark = pytest.mark.django_db


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_create_shows_token_once_and_stores_only_its_hash(user_client, user):
    response = user_client.post(
        "/api/v1/users/me/tokens/", {"name": "ci", "expires_days": 7}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    token = body["token"]
    assert token.startswith("ctx_")
    assert body["name"] == "ci"
    assert body["prefix"] == token[:12]
    assert body["revoked_at"] is None
    row = ApiToken.objects.get(pk=body["id"])
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(row.__dict__.values())
    assert row.expires_at is not None
    assert timedelta(days=6, hours=23) < row.expires_at - timezone.now() <= timedelta(days=7)

    listed = user_client.get("/api/v1/users/me/tokens/").json()
    assert listed["count"] == 1
    assert "token" not in listed["results"][0]
    assert listed["results"][0]["prefix"] == token[:12]
    detail = user_client.get(f"/api/v1/users/me/tokens/{body['id']}/").json()
    assert "token" not in detail and "token_hash" not in detail

    event = AuditEvent.objects.get(action="token.created")
    assert event.actor == user
    assert event.target_id == str(body["id"])
    assert token not in str(event.details)


def test_bearer_token_authenticates_and_records_last_use(user):
    row, token = token_create(actor=user, user=user, name="script")
    response = _bearer(token).get("/api/v1/users/me/")
    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert timezone.now() - row.last_used_at < timedelta(seconds=10)


@pytest.mark.parametrize(
    "header",
    ["Bearer ctx_nope", "Bearer", "Bearer a b", "Bearer not-our-format"],
)
def test_bad_bearer_header_is_401_with_bearer_challenge(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/users/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "authentication_failed"


def test_anonymous_gets_401_with_bearer_challenge(anon_client):
    response = anon_client.get("/api/v1/users/me/tokens/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_expired_token_is_refused(user):
    row, token = token_create(actor=user, user=user, name="old", expires_days=1)
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _bearer(token).get("/api/v1/users/me/").status_code == 401
    row.refresh_from_db()
    assert row.last_used_at is None


def test_revoke_via_delete_stops_the_token_at_once(user, user_client):
    row, token = token_create(actor=user, user=user, name="gone")
    assert _bearer(token).get("/api/v1/users/me/").status_code == 200
    response = user_client.delete(f"/api/v1/users/me/tokens/{row.pk}/")
    assert response.status_code == 204
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert _bearer(token).get("/api/v1/users/me/").status_code == 401
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.target_id == str(row.pk)
    assert event.details == {"user": user.pk, "name": "gone", "prefix": row.prefix}
    # A second revoke changes nothing and records nothing.
    assert user_client.delete(f"/api/v1/users/me/tokens/{row.pk}/").status_code == 204
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_other_users_token_is_404_and_untouched(user_client, make_user):
    other = make_user("bob@example.com")
    row, _ = token_create(actor=other, user=other, name="bobs")
    assert user_client.get(f"/api/v1/users/me/tokens/{row.pk}/").status_code == 404
    assert user_client.delete(f"/api/v1/users/me/tokens/{row.pk}/").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None
    assert not AuditEvent.objects.filter(action="token.revoked").exists()


def test_inactive_users_token_fails(user, staff_user):
    _, token = token_create(actor=user, user=user, name="x")
    user.is_active = False
    user.save()
    assert _bearer(token).get("/api/v1/users/me/").status_code == 401


def test_deactivation_revokes_every_token(user, staff_user):
    row, token = token_create(actor=user, user=user, name="x")
    user_deactivate(actor=staff_user, user=user)
    row.refresh_from_db()
    assert row.revoked_at is not None
    user.is_active = True
    user.save()
    assert _bearer(token).get("/api/v1/users/me/").status_code == 401


def test_create_validates_input(user_client):
    response = user_client.post(
        "/api/v1/users/me/tokens/", {"name": "", "expires_days": 0}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "expires_days"}
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.exists()


def test_token_list_query_count(user, user_client, django_assert_num_queries):
    for n in range(3):
        token_create(actor=user, user=user, name=f"t{n}")
    with django_assert_num_queries(2):
        assert user_client.get("/api/v1/users/me/tokens/").json()["count"] == 3


def test_create_api_token_command_prints_only_the_token(user):
    out = io.StringIO()
    call_command(
        "create_api_token", "ALICE@example.com", "--name", "ops", "--expires-days", "3", stdout=out
    )
    token = out.getvalue().strip()
    assert "\n" not in token and token.startswith("ctx_")
    row = ApiToken.objects.get(token_hash=hashlib.sha256(token.encode()).hexdigest())
    assert row.name == "ops" and row.user == user
    assert row.expires_at is not None
    event = AuditEvent.objects.get(action="token.created")
    assert event.source == "command" and event.actor is None
    assert _bearer(token).get("/api/v1/users/me/").status_code == 200


def test_create_api_token_command_refuses_unknown_user():
    with pytest.raises(CommandError):
        call_command("create_api_token", "nobody@example.com", stdout=io.StringIO())
    assert not ApiToken.objects.exists()
