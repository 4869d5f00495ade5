"""WebSocket tickets: issued over REST, single use, 30 s, and the session cookie as fallback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import path
from django.utils import timezone

from accounts.models import WsTicket
from accounts.services import token_create, ws_ticket_issue, ws_ticket_redeem
from cortex.ws_auth import WebSocketAuthMiddleware


class WhoAmIConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        await self.send_json({"email": user.email, "via": self.scope.get("auth_method", "session")})


# A Channels route built with Django's path(), whose stubs expect a view.
application = WebSocketAuthMiddleware(URLRouter([path("ws/whoami/", WhoAmIConsumer.as_asgi())]))  # type: ignore[arg-type, list-item]


async def _connect(path_qs: str, headers: list[tuple[bytes, bytes]] | None = None):
    communicator = WebsocketCommunicator(application, path_qs, headers=headers or [])
    connected, code = await communicator.connect(timeout=5)
    frame = await communicator.receive_json_from(timeout=5) if connected else None
    await communicator.disconnect()
    return connected, code, frame


@pytest.mark.django_db
def test_ticket_endpoint_with_bearer_token(user):
    _, token = token_create(actor=user, user=user, name="ws")
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post("/api/v1/ws-ticket/")
    assert response.status_code == 201
    body = response.json()
    assert body["expires_in"] == 30
    assert len(body["ticket"]) >= 40
    row = WsTicket.objects.get()
    assert row.ticket_hash != body["ticket"]
    assert row.user == user
    assert timedelta(seconds=29) < row.expires_at - timezone.now() <= timedelta(seconds=30)
    assert ws_ticket_redeem(ticket=body["ticket"]) == user
    assert ws_ticket_redeem(ticket=body["ticket"]) is None


@pytest.mark.django_db
def test_ticket_endpoint_refuses_anonymous(anon_client):
    assert anon_client.post("/api/v1/ws-ticket/").status_code == 401
    assert not WsTicket.objects.exists()


@pytest.mark.django_db(transaction=True)
async def test_ticket_connects_once(user):
    ticket = await sync_to_async(ws_ticket_issue)(user=user)
    connected, _, frame = await _connect(f"/ws/whoami/?ticket={ticket}")
    assert connected
    assert frame == {"email": "alice@example.com", "via": "ticket"}
    again, code, _ = await _connect(f"/ws/whoami/?ticket={ticket}")
    assert not again and code == 4401


@pytest.mark.django_db(transaction=True)
async def test_expired_or_unknown_ticket_is_refused(user):
    ticket = await sync_to_async(ws_ticket_issue)(user=user)
    await sync_to_async(
        lambda: WsTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    )()
    connected, code, _ = await _connect(f"/ws/whoami/?ticket={ticket}")
    assert not connected and code == 4401
    assert await sync_to_async(lambda: WsTicket.objects.get().used_at)() is None
    connected, code, _ = await _connect("/ws/whoami/?ticket=made-up")
    assert not connected and code == 4401


@pytest.mark.django_db(transaction=True)
async def test_inactive_users_ticket_is_refused(user):
    ticket = await sync_to_async(ws_ticket_issue)(user=user)
    user.is_active = False
    await sync_to_async(user.save)()
    connected, code, _ = await _connect(f"/ws/whoami/?ticket={ticket}")
    assert not connected and code == 4401


@pytest.mark.django_db(transaction=True)
async def test_session_cookie_still_works_and_bad_ticket_overrides_it(user):
    browser = Client()
    await sync_to_async(browser.force_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"cookie", cookie.encode())]
    connected, _, frame = await _connect("/ws/whoami/", headers)
    assert connected and frame == {"email": "alice@example.com", "via": "session"}
    connected, code, _ = await _connect("/ws/whoami/?ticket=bogus", headers)
    assert not connected and code == 4401
    anonymous, code, _ = await _connect("/ws/whoami/")
    assert not anonymous and code == 4401
