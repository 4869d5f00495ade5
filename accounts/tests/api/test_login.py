"""Password sign-in: session cookie, CSRF for browsers, throttles, same answer for all failures."""

from __future__ import annotations

from typing import ClassVar

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import override_settings
from django.utils.crypto import constant_time_compare
from rest_framework.test import APIClient

from accounts.models import AuditEvent

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
PASSWORD = "correct horse battery"


def test_login_sets_session_and_records_success(user):
    client = APIClient()
    response = client.post(
        LOGIN, {"email": "Alice@Example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"
    assert "sessionid" in response.cookies
    assert client.get("/api/v1/users/me/").json()["id"] == user.pk
    event = AuditEvent.objects.get(action="auth.login.succeeded")
    assert event.actor == user
    assert event.details == {"method": "password"}
    assert PASSWORD not in str(event.details)


def test_unknown_email_and_wrong_password_get_the_same_answer(user):
    client = APIClient()
    wrong = client.post(LOGIN, {"email": "alice@example.com", "password": "nope"}, format="json")
    unknown = client.post(LOGIN, {"email": "ghost@example.com", "password": "nope"}, format="json")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "error": {
                "code": "invalid_credentials",
                "message": "The email or password is not correct.",
            }
        }
    )
    assert "sessionid" not in wrong.cookies and "sessionid" not in unknown.cookies
    failed = list(AuditEvent.objects.filter(action="auth.login.failed").order_by("id"))
    assert [e.details["email"] for e in failed] == ["alice@example.com", "ghost@example.com"]
    assert all("password" not in e.details for e in failed)


class CountingHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 hasher, adding up the PBKDF2 iterations each request runs."""

    iterations_run: ClassVar[list[int]] = []

    def encode(self, password: str, salt: str, iterations: int | None = None) -> str:
        CountingHasher.iterations_run.append(iterations or self.iterations)
        return super().encode(password, salt, iterations)

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        iterations, salt = int(decoded["iterations"]), str(decoded["salt"])
        CountingHasher.iterations_run.append(iterations)
        # Straight to the hash compare, so the encode inside is not counted twice.
        encoded_2 = super().encode(password, salt, iterations)
        return constant_time_compare(encoded, encoded_2)


HASHER = f"{__name__}.CountingHasher"


@override_settings(PASSWORD_HASHERS=[HASHER])
def test_unknown_email_costs_a_full_hash_like_a_wrong_password(make_user):
    """No fast early exit for an unknown email: both answers run the full PBKDF2 work, so the
    time they take says nothing about which accounts exist (counted in iterations, not timed)."""
    make_user("slow@example.com", password=PASSWORD)

    def work(email: str) -> int:
        CountingHasher.iterations_run.clear()
        response = APIClient().post(LOGIN, {"email": email, "password": "wrong"}, format="json")
        assert response.status_code == 401
        return sum(CountingHasher.iterations_run)

    wrong, unknown = work("slow@example.com"), work("ghost@example.com")
    assert wrong >= CountingHasher.iterations
    assert unknown == wrong


def test_inactive_user_gets_the_same_failure(make_user):
    make_user("off@example.com", is_active=False)
    response = APIClient().post(
        LOGIN, {"email": "off@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_throttled_per_account_with_retry_after(user):
    client = APIClient()
    for _ in range(5):
        r = client.post(LOGIN, {"email": "alice@example.com", "password": "bad"}, format="json")
        assert r.status_code == 401
    response = client.post(
        LOGIN, {"email": "ALICE@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert response.json()["error"]["code"] == "throttled"
    assert set(response.json()["error"]) == {"code", "message"}
    assert "sessionid" not in response.cookies
    assert not AuditEvent.objects.filter(action="auth.login.succeeded").exists()
    # Another account from another address is not affected.
    other = APIClient(REMOTE_ADDR="10.9.9.9")
    assert (
        other.post(LOGIN, {"email": "x@example.com", "password": "b"}, format="json").status_code
        == 401
    )


def test_throttled_per_client_address(user):
    client = APIClient(REMOTE_ADDR="10.0.0.7")
    for n in range(30):
        r = client.post(LOGIN, {"email": f"u{n}@example.com", "password": "bad"}, format="json")
        assert r.status_code == 401
    response = client.post(
        LOGIN, {"email": "alice@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    # A forged X-Forwarded-For does not buy a fresh budget.
    forged = APIClient(REMOTE_ADDR="10.0.0.7", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert (
        forged.post(
            LOGIN, {"email": "alice@example.com", "password": PASSWORD}, format="json"
        ).status_code
        == 429
    )


@override_settings(ALLOW_PASSWORD_LOGIN=False)
def test_disabled_by_environment(user):
    response = APIClient().post(
        LOGIN, {"email": "alice@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "password_login_disabled"
    assert "sessionid" not in response.cookies


def test_disabled_at_run_time_by_admin(user, staff_client, staff_user):
    response = staff_client.patch(
        "/api/v1/admin/app-config/", {"allow_password_login": False}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["allow_password_login"] is False
    assert response.json()["password_login_effective"] is False
    assert response.json()["password_login_env"] is True
    event = AuditEvent.objects.get(action="app_config.updated")
    assert event.actor == staff_user
    assert event.details == {"setting": "allow_password_login", "before": True, "after": False}
    refused = APIClient().post(
        LOGIN, {"email": "alice@example.com", "password": PASSWORD}, format="json"
    )
    assert refused.status_code == 403
    assert staff_client.get("/api/v1/admin/app-config/").json()["allow_password_login"] is False
    staff_client.patch("/api/v1/admin/app-config/", {"allow_password_login": True}, format="json")
    ok = APIClient().post(
        LOGIN, {"email": "alice@example.com", "password": PASSWORD}, format="json"
    )
    assert ok.status_code == 200


def test_app_config_is_admin_only(user_client, anon_client):
    assert user_client.get("/api/v1/admin/app-config/").status_code == 403
    assert (
        user_client.patch(
            "/api/v1/admin/app-config/", {"allow_password_login": False}, format="json"
        ).status_code
        == 403
    )
    assert anon_client.get("/api/v1/admin/app-config/").status_code == 401
    assert not AuditEvent.objects.exists()


def test_browser_login_needs_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    body = {"email": "alice@example.com", "password": PASSWORD}
    blocked = client.post(LOGIN, body, format="json", HTTP_ORIGIN="https://evil.example")
    assert blocked.status_code == 403
    assert blocked.json()["error"]["code"] == "permission_denied"
    assert "sessionid" not in blocked.cookies

    csrf = client.get("/api/v1/auth/csrf/")
    assert csrf.status_code == 200
    token = csrf.json()["csrf_token"]
    assert "csrftoken" in csrf.cookies
    no_header = client.post(LOGIN, body, format="json", HTTP_ORIGIN="http://testserver")
    assert no_header.status_code == 403
    cross = client.post(
        LOGIN, body, format="json", HTTP_ORIGIN="https://evil.example", HTTP_X_CSRFTOKEN=token
    )
    assert cross.status_code == 403
    ok = client.post(
        LOGIN, body, format="json", HTTP_ORIGIN="http://testserver", HTTP_X_CSRFTOKEN=token
    )
    assert ok.status_code == 200
    assert AuditEvent.objects.filter(action="auth.login.succeeded").count() == 1


def test_logout_ends_session_and_is_audited(user):
    client = APIClient(enforce_csrf_checks=True)
    client.post(LOGIN, {"email": "alice@example.com", "password": PASSWORD}, format="json")
    assert client.get("/api/v1/users/me/").status_code == 200
    # A session caller must send the CSRF token on logout too.
    assert client.post("/api/v1/auth/logout/").status_code == 403
    token = client.cookies["csrftoken"].value
    assert client.post("/api/v1/auth/logout/", HTTP_X_CSRFTOKEN=token).status_code == 204
    assert client.get("/api/v1/users/me/").status_code == 401
    assert AuditEvent.objects.filter(action="auth.logout", actor=user).count() == 1


def test_login_validates_body():
    response = APIClient().post(LOGIN, {"email": "a@example.com"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"password": ["This field is required."]}
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("fmt", "headers"),
    [
        ("multipart", {}),  # a form a hostile page can post, Origin stripped (old browser)
        (None, {"content_type": "application/x-www-form-urlencoded"}),
        ("json", {"HTTP_SEC_FETCH_SITE": "cross-site"}),
        ("json", {"HTTP_REFERER": "https://evil.example/"}),
        ("json", {"HTTP_ORIGIN": "null"}),
    ],
)
def test_browser_shaped_login_without_token_is_refused(user, fmt, headers):
    client = APIClient(enforce_csrf_checks=True)
    body = {"email": "alice@example.com", "password": PASSWORD}
    if fmt is None:
        from urllib.parse import urlencode

        response = client.post(LOGIN, urlencode(body), **headers)
    else:
        response = client.post(LOGIN, body, format=fmt, **headers)
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert "sessionid" not in response.cookies
    assert not AuditEvent.objects.filter(action__startswith="auth.login").exists()


def test_script_login_with_json_and_no_browser_headers_still_works(user):
    client = APIClient(enforce_csrf_checks=True)
    body = {"email": "alice@example.com", "password": PASSWORD}
    response = client.post(LOGIN, body, format="json")
    assert response.status_code == 200
    assert "sessionid" in response.cookies
