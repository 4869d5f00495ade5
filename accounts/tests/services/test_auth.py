"""Password sign-in and the run-time switch, called as services with a real request and session."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from accounts.context import AuditContext
from accounts.errors import InvalidCredentials, PasswordLoginDisabled
from accounts.models import AppConfig, AuditEvent
from accounts.services import app_config_update, password_login

pytestmark = pytest.mark.django_db


def _request() -> HttpRequest:
    request = RequestFactory().post("/api/v1/auth/login/", REMOTE_ADDR="192.0.2.7")
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    return request


def test_password_login_starts_a_session_and_audits_without_the_password(user):
    request = _request()
    signed_in = password_login(
        request=request, email="ALICE@example.com", password="correct horse battery"
    )
    assert signed_in.pk == user.pk
    assert str(request.session[SESSION_KEY]) == str(user.pk)
    event = AuditEvent.objects.get(action="auth.login.succeeded")
    assert event.actor_id == user.pk and event.client_ip == "192.0.2.7"
    assert event.details == {"method": "password"}


def test_password_login_wrong_password_and_unknown_email_fail_alike(user):
    for email in ("alice@example.com", "nobody@example.com"):
        request = _request()
        with pytest.raises(InvalidCredentials) as exc:
            password_login(request=request, email=email, password="wrong guess")
        assert exc.value.code == "invalid_credentials"
        assert SESSION_KEY not in request.session
    failures = AuditEvent.objects.filter(action="auth.login.failed").order_by("id")
    assert [e.details["reason"] for e in failures] == ["invalid_credentials"] * 2
    assert [e.actor_id for e in failures] == [None, None]
    assert "wrong guess" not in str(list(failures.values_list("details", flat=True)))


def test_password_login_refused_when_the_switch_is_off(user, staff_user):
    app_config_update(actor=staff_user, data={"allow_password_login": False})
    request = _request()
    with pytest.raises(PasswordLoginDisabled) as exc:
        password_login(request=request, email=user.email, password="correct horse battery")
    assert exc.value.code == "password_login_disabled"
    assert SESSION_KEY not in request.session
    assert AuditEvent.objects.get(action="auth.login.failed").details["reason"] == "disabled"


def test_app_config_update_records_a_change_once_and_ignores_other_keys(staff_user):
    context = AuditContext(transport="admin", client_ip="10.1.1.1")
    config = app_config_update(
        actor=staff_user,
        data={"allow_password_login": False, "is_staff": True},
        audit_context=context,
    )
    assert config.allow_password_login is False and config.updated_by_id == staff_user.pk
    assert AppConfig.objects.get(pk=AppConfig.SINGLETON_PK).allow_password_login is False
    app_config_update(actor=staff_user, data={"allow_password_login": False})
    events = AuditEvent.objects.filter(action="app_config.updated")
    assert events.count() == 1
    event = events.get()
    assert event.details == {"setting": "allow_password_login", "before": True, "after": False}
    assert event.source == "admin"
