"""Ending a user's browser sessions: only theirs, only live ones."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.services.sessions import user_sessions_end

pytestmark = pytest.mark.django_db


def test_user_sessions_end_deletes_every_session_of_that_user_only(user, make_user):
    bob = make_user("bob@example.com")
    alice_laptop, alice_phone, bob_client = Client(), Client(), Client()
    alice_laptop.force_login(user)
    alice_phone.force_login(user)
    bob_client.force_login(bob)
    assert Session.objects.count() == 3
    assert user_sessions_end(user=user) == 2
    assert list(Session.objects.values_list("session_key", flat=True)) == [
        bob_client.session.session_key
    ]
    assert alice_laptop.get("/api/v1/users/me/").status_code in (401, 403)
    assert bob_client.get("/api/v1/users/me/").status_code == 200
    assert user_sessions_end(user=user) == 0
