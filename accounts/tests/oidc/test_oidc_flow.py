"""OIDC sign-in against a loopback issuer: the happy path and every tampering case."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import AuditEvent, User
from accounts.oidc import safe_next_path
from accounts.tests.oidc.conftest import run_flow

pytestmark = pytest.mark.django_db


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_first_sign_in_creates_user_by_sub_and_syncs_groups(issuer):
    issuer.claims["groups"] = ["ops", "devs"]
    client = Client()
    response = run_flow(client, next_path="/console/nodes/")
    assert response.status_code == 302
    assert response["Location"] == "/console/nodes/"
    user = User.objects.get(oidc_sub="user-sub-1")
    assert user.email == "oidc.user@example.com"
    assert user.display_name == "Oidc User"
    assert not user.has_usable_password()
    assert client.session["_auth_user_id"] == str(user.pk)
    assert sorted(user.groups.values_list("name", flat=True)) == ["devs", "ops"]
    assert client.get("/api/v1/users/me/").json()["email"] == "oidc.user@example.com"
    success = AuditEvent.objects.get(action="auth.login.succeeded")
    assert success.actor == user and success.source == "oidc"
    assert success.details == {"method": "oidc"}

    # A second sign-in with a new email at the provider still finds the user by `sub`,
    # and group membership follows the claim.
    issuer.claims.update(email="renamed@example.com", groups=["ops"])
    second = Client()
    assert run_flow(second).status_code == 302
    assert User.objects.count() == 1
    assert list(user.groups.values_list("name", flat=True)) == ["ops"]
    synced = AuditEvent.objects.filter(action="user.groups_synced").order_by("id").last()
    assert synced.details == {"added": [], "removed": ["devs"]}
    assert Group.objects.filter(name="devs").exists()


def test_existing_verified_email_is_linked_unverified_is_refused(issuer, make_user):
    existing = make_user("oidc.user@example.com")
    issuer.claims["email_verified"] = False
    client = Client()
    response = run_flow(client)
    assert response["Location"] == "/admin/login/"
    assert not _signed_in(client)
    failed = AuditEvent.objects.get(action="auth.login.failed")
    assert failed.details == {"method": "oidc", "reason": "email_not_linkable"}
    existing.refresh_from_db()
    assert existing.oidc_sub is None

    issuer.claims["email_verified"] = True
    client = Client()
    assert run_flow(client)["Location"] == "/console/"
    existing.refresh_from_db()
    assert existing.oidc_sub == "user-sub-1"
    assert client.session["_auth_user_id"] == str(existing.pk)


def test_inactive_user_is_refused(issuer, make_user):
    make_user("oidc.user@example.com", is_active=False).__class__.objects.filter(
        email="oidc.user@example.com"
    ).update(oidc_sub="user-sub-1")
    client = Client()
    response = run_flow(client)
    assert response["Location"] == "/admin/login/"
    assert not _signed_in(client)
    assert AuditEvent.objects.get(action="auth.login.failed").details["reason"] == "user_inactive"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("other_key", "signature_invalid"),
        ("hs256", "algorithm_not_allowed"),
        ("none", "algorithm_not_allowed"),
        ("wrong_nonce", "nonce_mismatch"),
        ("expired", "token_expired"),
        ("wrong_audience", "audience_mismatch"),
    ],
)
def test_tampered_id_token_ends_without_session(issuer, mode, reason):
    issuer.mode = mode
    client = Client()
    response = run_flow(client)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert not _signed_in(client)
    assert not User.objects.exists()
    event = AuditEvent.objects.get()
    assert event.action == "auth.login.failed"
    assert event.actor is None
    assert event.details == {"method": "oidc", "reason": reason}
    assert issuer.token_requests == 1


def test_wrong_state_ends_without_session(issuer):
    client = Client()
    response = run_flow(client, tamper_state=True)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert not _signed_in(client)
    assert issuer.token_requests == 0
    assert not User.objects.exists()
    event = AuditEvent.objects.get()
    assert event.details == {"method": "oidc", "reason": "state_mismatch"}


def test_state_is_single_use(issuer):
    client = Client()
    start = client.get("/oidc/authenticate/")
    import requests

    back = requests.get(start["Location"], allow_redirects=False, timeout=5).headers["Location"]
    path = back.removeprefix("http://testserver")
    assert client.get(path)["Location"] == "/console/"
    client.logout()
    replay = client.get(path)
    assert replay["Location"] == "/admin/login/"
    assert not _signed_in(client)
    assert AuditEvent.objects.filter(action="auth.login.failed").count() == 1


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "http://testserver/x"],
)
def test_redirect_to_another_host_is_refused(issuer, target):
    client = Client()
    response = client.get("/oidc/authenticate/", {"next": target})
    assert response.status_code == 400
    assert not _signed_in(client)
    assert "oidc_states" not in client.session
    event = AuditEvent.objects.get()
    assert event.details == {"method": "oidc", "reason": "unsafe_redirect"}


def test_provider_error_is_audited(issuer):
    client = Client()
    client.get("/oidc/authenticate/")
    state = next(iter(client.session["oidc_states"]))
    response = client.get("/oidc/callback/", {"error": "access_denied", "state": state})
    assert response["Location"] == "/admin/login/"
    assert not _signed_in(client)
    event = AuditEvent.objects.get()
    assert event.details == {"method": "oidc", "reason": "provider_error", "error": "access_denied"}


def test_oidc_routes_are_404_when_not_configured(client):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=a&state=b").status_code == 404


def test_safe_next_path():
    assert safe_next_path("/console/?a=1") == "/console/?a=1"
    for bad in ["", None, "console", "//x", "/\\x", "https://x/", "/a\\b", "/a\nb"]:
        assert safe_next_path(bad) is None


def test_session_refresh_signs_out_a_user_the_provider_no_longer_accepts(issuer):
    from django.conf import settings
    from django.test import override_settings

    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("cortex.patches.django_middleware.AuthenticationMiddleware") + 1,
        "accounts.oidc.OIDCSessionRefresh",
    )
    with override_settings(MIDDLEWARE=middleware):
        client = Client()
        assert run_flow(client)["Location"] == "/console/"
        assert client.get("/api/v1/users/me/").status_code == 200  # inside the window
        session = client.session
        session["oidc_id_token_expiration"] = 0
        session.save()
        renew = client.get("/api/v1/users/me/")
        assert renew.status_code == 302
        assert renew["Location"].startswith(f"{issuer.url}/authorize?")
        assert "prompt=none" in renew["Location"]
        # The provider answers that the user must sign in again (disabled there): signed out.
        state = renew["Location"].split("state=")[1].split("&")[0]
        out = client.get("/oidc/callback/", {"error": "login_required", "state": state})
        assert out["Location"] == "/admin/login/"
        assert not _signed_in(client)
        assert client.get("/api/v1/users/me/").status_code == 401
