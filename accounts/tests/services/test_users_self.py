"""User services called directly: create, edit one's own profile, change one's own password."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from accounts.errors import EmailTaken, FieldNotWritable, PasswordLoginDisabled, WrongPassword
from accounts.models import AuditEvent, User
from accounts.services import (
    app_config_update,
    user_create,
    user_password_change,
    user_update_self,
)
from cortex.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def _details() -> str:
    return str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_user_create_normalises_email_and_audits_without_the_password(staff_user):
    created = user_create(
        actor=staff_user, email="New.Person@EXAMPLE.com", password="a long enough phrase"
    )
    assert created.email == "new.person@example.com"
    assert created.check_password("a long enough phrase")
    assert not created.is_staff
    event = AuditEvent.objects.get(action="user.created")
    assert event.details == {"email": created.email, "is_staff": False, "sign_in": "password"}
    assert "a long enough phrase" not in _details()


def test_user_create_without_password_is_oidc_only_and_staff_is_superuser(staff_user):
    created = user_create(actor=staff_user, email="sso@example.com", is_staff=True)
    assert not created.has_usable_password()
    assert created.is_staff and created.is_superuser
    assert AuditEvent.objects.get(action="user.created").details["sign_in"] == "oidc_only"


def test_user_create_refuses_taken_email_and_weak_password(staff_user, user):
    with pytest.raises(EmailTaken) as taken:
        user_create(actor=staff_user, email="ALICE@example.com", password="a long enough phrase")
    assert taken.value.code == "email_taken"
    with pytest.raises(ValidationFailed) as weak:
        user_create(actor=staff_user, email="weak@example.com", password="short")
    assert "password" in weak.value.fields
    assert not User.objects.filter(email="weak@example.com").exists()
    assert not AuditEvent.objects.filter(action="user.created").exists()


def test_user_update_self_writes_harmless_fields_and_audits_the_difference(user):
    updated = user_update_self(
        actor=user,
        data={"display_name": "Alice", "default_approval_policy": "auto"},
        requested=["display_name", "default_approval_policy"],
    )
    user.refresh_from_db()
    assert updated.display_name == user.display_name == "Alice"
    assert user.default_approval_policy == "auto"
    event = AuditEvent.objects.get(action="user.updated")
    assert event.details["after"] == {"display_name": "Alice", "default_approval_policy": "auto"}
    user_update_self(actor=user, data={"display_name": "Alice"}, requested=["display_name"])
    assert AuditEvent.objects.filter(action="user.updated").count() == 1


def test_user_update_self_refuses_privileged_fields_as_a_whole(user):
    with pytest.raises(FieldNotWritable) as exc:
        user_update_self(
            actor=user,
            data={"display_name": "Root", "is_staff": True},
            requested=["display_name", "is_staff", "email"],
        )
    assert exc.value.code == "field_not_writable"
    assert set(exc.value.fields or {}) == {"is_staff", "email"}
    user.refresh_from_db()
    assert not user.is_staff and user.display_name == ""
    attempt = AuditEvent.objects.get(action="user.privilege_escalation_attempt")
    assert attempt.details == {"fields": ["email", "is_staff"]}


def _signed_in_request(user: User) -> HttpRequest:
    request = RequestFactory().post("/")
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    request.user = user
    request.session[SESSION_KEY] = str(user.pk)
    return request


def test_user_password_change_keeps_the_own_session_and_never_records_a_password(user):
    request = _signed_in_request(user)
    user_password_change(
        actor=user,
        current_password="correct horse battery",
        new_password="another fine passphrase",
        session_request=request,
    )
    user.refresh_from_db()
    assert user.check_password("another fine passphrase")
    assert request.session.get("_auth_user_hash") == user.get_session_auth_hash()
    assert AuditEvent.objects.filter(action="user.password_changed").count() == 1
    assert "another fine passphrase" not in _details()
    assert "correct horse battery" not in _details()


def test_user_password_change_refusals_are_audited_with_their_reason(user, staff_user):
    with pytest.raises(WrongPassword) as wrong:
        user_password_change(actor=user, current_password="guess", new_password="x" * 20)
    assert wrong.value.code == "wrong_password"
    with pytest.raises(ValidationFailed) as weak:
        user_password_change(
            actor=user, current_password="correct horse battery", new_password="short"
        )
    assert "new_password" in weak.value.fields
    app_config_update(actor=staff_user, data={"allow_password_login": False})
    with pytest.raises(PasswordLoginDisabled):
        user_password_change(
            actor=user,
            current_password="correct horse battery",
            new_password="another fine passphrase",
        )
    user.refresh_from_db()
    assert user.check_password("correct horse battery")
    reasons = [
        e.details["reason"]
        for e in AuditEvent.objects.filter(action="user.password_change_refused").order_by("id")
    ]
    assert reasons == ["wrong_current_password", "weak_password", "password_login_disabled"]
    assert "guess" not in _details() and "short" not in _details()
