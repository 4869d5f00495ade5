"""Webhook replay protection: a signed request is accepted once (remembered in the database
for the window, then swept); a timestamped signature must also be recent. The documented form,
a signature of the body alone, keeps working."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from agents import services
from agents.models import AgentRun, WebhookDelivery
from cortex.sweeps import sweeps_run

pytestmark = pytest.mark.django_db(transaction=True)

BODY = b'{"alert": "disk full"}'


@pytest.fixture
def hook(user: Any, agent_settings: Any) -> tuple[Any, str]:
    agent_settings.AGENT_WEBHOOK_WINDOW_S = 300
    return services.agent_create(
        actor=user, name="hook", prompt="p", node_ids=[], trigger={"kind": "manual"}
    )


def _post(agent: Any, secret: str, *, timestamp: str, body: bytes = BODY, **headers: str) -> Any:
    signature = services.signature_of(secret=secret, body=body, timestamp=timestamp)
    return APIClient().generic(
        "POST",
        f"/api/v1/agents/{agent.pk}/trigger/",
        body,  # type: ignore[arg-type]  # Django's test client takes bytes too
        content_type="application/json",
        HTTP_X_CORTEX_SIGNATURE=headers.get("signature", signature),
        HTTP_X_CORTEX_TIMESTAMP=headers.get("header_timestamp", timestamp),
    )


def _refusals(reason: str) -> int:
    return AuditEvent.objects.filter(
        action="agents.webhook.refused", details__reason=reason
    ).count()


def test_a_captured_request_starts_no_second_run(hook):
    agent, secret = hook
    now = str(int(time.time()))
    first = _post(agent, secret, timestamp=now)
    assert first.status_code == 202, first.content
    AgentRun.objects.filter(pk=first.json()["id"]).update(status="succeeded")  # not too soon

    replay = _post(agent, secret, timestamp=now)
    assert replay.status_code == 409
    assert replay.json()["error"]["code"] == "replayed_delivery"
    assert AgentRun.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1
    assert _refusals("replayed_delivery") == 1
    # The same body signed anew (another timestamp) is a new delivery.
    fresh = _post(agent, secret, timestamp=str(int(now) + 1))
    assert fresh.status_code == 202, fresh.content
    assert AgentRun.objects.count() == 2


@pytest.mark.parametrize("offset", [-301, 301, -86400 * 365, 86400 * 365])
def test_a_timestamp_outside_the_window_is_stale(hook, offset):
    agent, secret = hook
    response = _post(agent, secret, timestamp=str(int(time.time()) + offset))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "stale_signature"
    assert AgentRun.objects.count() == 0 and WebhookDelivery.objects.count() == 0
    assert _refusals("stale_signature") == 1


@pytest.mark.parametrize(
    "timestamp",
    [" 1700000000", "1700000000.5", "+1700000000", "-5", "1_700_000_000", "١٧٠٠٠٠٠٠٠٠", "1e9"],
)
def test_a_malformed_timestamp_is_an_invalid_signature(hook, timestamp):
    agent, secret = hook
    # Signed over exactly what was sent: only the timestamp's form is wrong.
    response = _post(agent, secret, timestamp=timestamp)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert AgentRun.objects.count() == 0 and WebhookDelivery.objects.count() == 0


def test_a_signature_for_another_timestamp_is_refused(hook):
    agent, secret = hook
    now = int(time.time())
    signature = services.signature_of(secret=secret, body=BODY, timestamp=str(now))
    response = _post(
        agent, secret, timestamp=str(now), header_timestamp=str(now - 1), signature=signature
    )
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_signature")
    assert AgentRun.objects.count() == 0


def test_the_documented_body_signature_is_accepted_once(hook):
    agent, secret = hook
    signature = services.signature_of(secret=secret, body=BODY)
    assert signature == services.signature_of(secret=secret, body=BODY, timestamp="")
    first = APIClient().generic(
        "POST",
        f"/api/v1/agents/{agent.pk}/trigger/",
        BODY,  # type: ignore[arg-type]
        content_type="application/json",
        HTTP_X_CORTEX_SIGNATURE=signature,
    )
    assert first.status_code == 202, first.content
    AgentRun.objects.filter(pk=first.json()["id"]).update(status="succeeded")  # not too soon
    replay = _post(agent, secret, timestamp="")
    assert (replay.status_code, replay.json()["error"]["code"]) == (409, "replayed_delivery")
    assert AgentRun.objects.count() == 1


def test_a_signature_and_timestamp_must_agree_on_their_form(hook):
    agent, secret = hook
    now = str(int(time.time()))
    body_only = services.signature_of(secret=secret, body=BODY)
    # A body signature sent with a timestamp, and a timestamped one sent without it.
    assert _post(agent, secret, timestamp=now, signature=body_only).status_code == 401
    assert _post(agent, secret, timestamp=now, header_timestamp="").status_code == 401
    assert AgentRun.objects.count() == 0


def test_old_deliveries_are_swept(hook):
    agent, secret = hook
    assert _post(agent, secret, timestamp=str(int(time.time()))).status_code == 202
    old = WebhookDelivery.objects.create(
        agent=agent, digest="0" * 64, received_at=timezone.now() - timedelta(seconds=601)
    )
    assert sweeps_run()["agents.webhook_deliveries_sweep"] == 1
    assert not WebhookDelivery.objects.filter(pk=old.pk).exists()
    assert WebhookDelivery.objects.count() == 1  # the recent one is still remembered
