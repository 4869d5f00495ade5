"""Django admin: users, groups and tokens go through the audited services; hashes never shown."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import ApiToken, AuditEvent, User
from accounts.services import token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def test_token_admin_never_shows_hash_or_token(admin_client_, user):
    row, plaintext = token_create(actor=user, user=user, name="laptop")
    listing = admin_client_.get("/admin/accounts/apitoken/")
    detail = admin_client_.get(f"/admin/accounts/apitoken/{row.pk}/change/")
    assert listing.status_code == 200 and detail.status_code == 200
    for page in (listing.content.decode(), detail.content.decode()):
        assert row.token_hash not in page
        assert plaintext not in page
    assert "laptop" in listing.content.decode()


def test_token_admin_revoke_action_is_audited(admin_client_, user, staff_user):
    row, _ = token_create(actor=user, user=user, name="laptop")
    response = admin_client_.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [row.pk]},
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.actor == staff_user and event.source == "admin"


def test_user_admin_add_and_deactivate_go_through_services(admin_client_, staff_user):
    response = admin_client_.post(
        "/admin/accounts/user/add/",
        {"email": "Made@Example.com", "display_name": "M", "is_active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    made = User.objects.get(email="made@example.com")
    assert AuditEvent.objects.get(action="user.created").source == "admin"
    admin_client_.post(
        "/admin/accounts/user/", {"action": "deactivate", "_selected_action": [made.pk]}
    )
    made.refresh_from_db()
    assert made.is_active is False
    assert AuditEvent.objects.get(action="user.deactivated").actor == staff_user


def test_group_admin_is_audited(admin_client_):
    response = admin_client_.post("/admin/auth/group/add/", {"name": "ops"})
    assert response.status_code == 302
    group = Group.objects.get(name="ops")
    admin_client_.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    assert not Group.objects.filter(name="ops").exists()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["group.created", "group.deleted"]


def test_audit_admin_is_read_only(admin_client_, user):
    token_create(actor=user, user=user, name="x")
    event = AuditEvent.objects.get()
    assert admin_client_.get("/admin/accounts/auditevent/").status_code == 200
    assert admin_client_.get(f"/admin/accounts/auditevent/{event.pk}/delete/").status_code == 403
    assert ApiToken.objects.count() == 1
