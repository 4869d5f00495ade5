"""User services not covered through the API tests: first admin, reactivation, password, email."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import override_settings

from accounts.errors import EmailTaken
from accounts.models import AuditEvent, User
from accounts.services import admin_ensure, user_update
from cortex.errors import ValidationFailed

pytestmark = pytest.mark.django_db


@override_settings(ADMIN_EMAIL="boss@example.com", ADMIN_PASSWORD="")
def test_ensure_admin_generates_password_once():
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    admin = User.objects.get(email="boss@example.com")
    assert admin.is_staff and admin.is_superuser
    generated = out.getvalue().split("with password ")[1].split(" ")[0]
    assert admin.check_password(generated)
    assert generated not in str(list(AuditEvent.objects.values_list("details", flat=True)))
    again = io.StringIO()
    call_command("ensure_admin", stdout=again)
    assert "exists already" in again.getvalue()
    assert User.objects.count() == 1


def test_admin_ensure_with_given_password():
    user, generated = admin_ensure(email="a@example.com", password="given pass phrase")
    assert generated is None and user is not None and user.check_password("given pass phrase")


def test_user_update_password_email_and_reactivation(staff_user, user):
    user_update(actor=staff_user, user=user, data={"is_active": False})
    user_update(
        actor=staff_user,
        user=user,
        data={
            "is_active": True,
            "password": "a brand new passphrase",
            "email": "Alice2@Example.com",
        },
    )
    user.refresh_from_db()
    assert user.is_active and user.email == "alice2@example.com"
    assert user.check_password("a brand new passphrase")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["user.deactivated", "user.reactivated", "user.updated"]
    updated = AuditEvent.objects.get(action="user.updated")
    assert updated.details["fields"] == ["email", "password"]
    assert "a brand new passphrase" not in str(updated.details)


def test_user_update_refuses_weak_password_and_taken_email(staff_user, user):
    with pytest.raises(ValidationFailed) as exc:
        user_update(actor=staff_user, user=user, data={"password": "short"})
    assert "password" in exc.value.fields
    with pytest.raises(EmailTaken):
        user_update(actor=staff_user, user=user, data={"email": "ROOT@example.com"})
    with pytest.raises(ValidationFailed):
        user_update(actor=staff_user, user=user, data={"display_name": "A", "password": "x"})
    user.refresh_from_db()
    assert user.email == "alice@example.com" and user.display_name == ""
    assert not AuditEvent.objects.exists()
