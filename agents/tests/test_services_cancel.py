"""agents/services/cancel.py, notify.py and the small run services around a cancel: the
chat-side stop, the cancel flag a driving process polls, the owner's frame (sent only once
the transaction commits), and the sweep of remembered webhook deliveries."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from agents import services
from agents.models import AgentRun, WebhookDelivery
from agents.services.cancel import session_turn_cancel
from agents.services.execution import run_cancel_requested
from agents.services.notify import AGENT_RUN, run_notify_on_commit
from agents.services.runs import webhook_deliveries_sweep
from agents.tests.test_runs import _agent, exec_tool  # noqa: F401
from mesh import events
from sessions_app.services.sessions import session_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("exec_tool")]


def test_run_cancel_requested_follows_the_flag_and_the_status(user, nodes, agent_settings):
    run = services.run_now(actor=user, agent=_agent(user))
    assert services.runs_claim(worker="w1") == [run.pk]
    assert run_cancel_requested(run_id=run.pk) is False  # running, nobody asked
    AgentRun.objects.filter(pk=run.pk).update(cancel_requested_at=timezone.now())
    assert run_cancel_requested(run_id=run.pk) is True
    AgentRun.objects.filter(pk=run.pk).update(cancel_requested_at=None, status="succeeded")
    assert run_cancel_requested(run_id=run.pk) is True  # no longer active: stop too
    assert run_cancel_requested(run_id=run.pk + 1000) is True  # gone: stop


def test_session_turn_cancel_is_false_without_a_chat_or_a_turn(user, nodes, agent_settings):
    run = services.run_now(actor=user, agent=_agent(user))
    assert session_turn_cancel(run=run) is False  # not prepared: no chat yet
    run.session = session_create(actor=user)
    run.save(update_fields=["session"])
    assert session_turn_cancel(run=run) is False  # a chat with no turn running


async def _listen(group: str) -> str:
    layer = get_channel_layer()
    channel: str = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def _read(channel: str) -> list[dict[str, Any]]:
    layer, got = get_channel_layer(), []
    while True:
        try:
            got.append(await asyncio.wait_for(layer.receive(channel), timeout=0.5))
        except TimeoutError:
            return got


def test_run_notify_on_commit_tells_the_owner_only_after_commit(user):
    channel = async_to_sync(_listen)(events.group_name(events.USER_NODES_GROUP, user_id=user.pk))

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        run_notify_on_commit(owner_id=user.pk, agent_id=1, run_id=2, status="cancelled")
        raise Rollback
    assert async_to_sync(_read)(channel) == []

    with transaction.atomic():
        run_notify_on_commit(
            owner_id=user.pk, agent_id=1, run_id=2, status="cancelled", session_id=3
        )
        assert async_to_sync(_read)(channel) == []  # not before the commit
    (message,) = async_to_sync(_read)(channel)
    frame = message.get("frame", message)
    assert {k: frame[k] for k in ("type", "agent_id", "run_id", "status", "session_id")} == {
        "type": AGENT_RUN,
        "agent_id": 1,
        "run_id": 2,
        "status": "cancelled",
        "session_id": 3,
    }


def test_webhook_deliveries_sweep_forgets_only_what_is_older_than_twice_the_window(
    user, nodes, agent_settings
):
    agent_settings.AGENT_WEBHOOK_WINDOW_S = 300
    agent = _agent(user)
    now = timezone.now()
    old = WebhookDelivery.objects.create(
        agent=agent, digest="a" * 64, received_at=now - timedelta(seconds=601)
    )
    recent = WebhookDelivery.objects.create(
        agent=agent, digest="b" * 64, received_at=now - timedelta(seconds=599)
    )
    assert webhook_deliveries_sweep(now=now) == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not WebhookDelivery.objects.filter(pk=old.pk).exists()
    assert webhook_deliveries_sweep(now=now) == 0
