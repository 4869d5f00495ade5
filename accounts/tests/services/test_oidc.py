"""Users from verified OIDC claims: match by sub, link only verified emails, sync groups."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.errors import OidcUserRefused
from accounts.models import AuditEvent, User
from accounts.services.oidc import oidc_user_resolve

pytestmark = pytest.mark.django_db


def test_first_sign_in_creates_an_oidc_only_user_and_later_finds_it_by_sub():
    claims = {"sub": "abc", "email": "New@Example.com", "name": "New Person"}
    created = oidc_user_resolve(claims=claims)
    assert created.email == "new@example.com" and created.oidc_sub == "abc"
    assert created.display_name == "New Person" and not created.has_usable_password()
    event = AuditEvent.objects.get(action="user.created")
    assert event.source == "oidc" and event.details["sign_in"] == "oidc_only"
    # The email may change at the provider; the sub still names the same user.
    again = oidc_user_resolve(claims={"sub": "abc", "email": "renamed@example.com"})
    assert again.pk == created.pk and User.objects.count() == 1


def test_an_existing_password_account_is_linked_only_for_a_verified_email(user):
    with pytest.raises(OidcUserRefused) as exc:
        oidc_user_resolve(claims={"sub": "s1", "email": user.email, "email_verified": "true"})
    assert exc.value.code == "oidc_user_refused" and str(exc.value.message) == "email_not_linkable"
    user.refresh_from_db()
    assert user.oidc_sub in (None, "")
    linked = oidc_user_resolve(claims={"sub": "s1", "email": user.email, "email_verified": True})
    assert linked.pk == user.pk and linked.oidc_sub == "s1"
    assert AuditEvent.objects.filter(action="user.oidc_linked").count() == 1
    # A second provider identity cannot take the already linked account.
    with pytest.raises(OidcUserRefused):
        oidc_user_resolve(claims={"sub": "s2", "email": user.email, "email_verified": True})


def test_missing_email_and_inactive_users_are_refused(make_user):
    with pytest.raises(OidcUserRefused) as missing:
        oidc_user_resolve(claims={"sub": "nobody"})
    assert str(missing.value.message) == "email_missing"
    assert not User.objects.exists()
    gone = make_user("gone@example.com", is_active=False)
    gone.oidc_sub = "gone"
    gone.save(update_fields=["oidc_sub"])
    with pytest.raises(OidcUserRefused) as inactive:
        oidc_user_resolve(claims={"sub": "gone", "email": "gone@example.com"})
    assert str(inactive.value.message) == "user_inactive"


def test_groups_follow_the_claim_when_it_is_set_and_present():
    Group.objects.create(name="old")
    claims = {"sub": "g", "email": "g@example.com", "groups": ["ops", "dev", ""]}
    user = oidc_user_resolve(claims=claims, groups_claim="groups")
    assert sorted(user.groups.values_list("name", flat=True)) == ["dev", "ops"]
    user.groups.add(Group.objects.get(name="old"))
    oidc_user_resolve(claims={**claims, "groups": "ops"}, groups_claim="groups")
    assert list(user.groups.values_list("name", flat=True)) == ["ops"]
    synced = AuditEvent.objects.filter(action="user.groups_synced").order_by("id").last()
    assert synced.details == {"added": [], "removed": ["dev", "old"]}
    # Claim absent or of the wrong shape: memberships stay as they are.
    oidc_user_resolve(claims={"sub": "g", "email": "g@example.com"}, groups_claim="groups")
    oidc_user_resolve(claims={**claims, "groups": {"x": 1}}, groups_claim="groups")
    assert list(user.groups.values_list("name", flat=True)) == ["ops"]
