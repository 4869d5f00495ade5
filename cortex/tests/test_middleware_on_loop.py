"""Django's middleware with hooks on the event loop behave as Django's own under ASGI."""

from __future__ import annotations

import pytest
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_password_session_is_saved_and_used_on_the_next_request(make_user):
    from asgiref.sync import sync_to_async

    await sync_to_async(make_user)("sam@example.com", password="correct horse battery")
    client = AsyncClient(enforce_csrf_checks=True)
    token = (await client.get("/api/v1/auth/csrf/")).json()["csrf_token"]
    login = await client.post(
        "/api/v1/auth/login/",
        {"email": "sam@example.com", "password": "correct horse battery"},
        content_type="application/json",
        headers={
            "X-CSRFToken": token,
            "Origin": "http://testserver",
            "Referer": "http://testserver/",
        },
    )
    assert login.status_code == 200, login.content
    assert "sessionid" in login.cookies  # the modified session was saved (in the thread)
    me = await client.get("/api/v1/users/me/")
    assert (me.status_code, me.json()["email"]) == (200, "sam@example.com")
    assert "Cookie" in me["Vary"]  # the session was read: responses vary on the cookie
    assert me["X-Frame-Options"] == "DENY" and me["X-Content-Type-Options"] == "nosniff"
    assert me["X-Request-ID"]


async def test_an_admin_message_is_stored_and_shown(make_user):
    from asgiref.sync import sync_to_async

    admin = await sync_to_async(make_user)(
        "root2@example.com", password="correct horse battery", is_staff=True, is_superuser=True
    )
    client = AsyncClient()
    await sync_to_async(client.force_login)(admin)
    added = await client.post(
        "/admin/auth/group/add/", {"name": "night-shift", "_save": "Save"}, follow=False
    )
    assert added.status_code == 302  # the "added successfully" message went to the session
    listing = await client.get(added["Location"])
    assert b"night-shift" in listing.content and b"was added successfully" in listing.content
