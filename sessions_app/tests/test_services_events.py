"""sessions_app/services/events.py: a frame from sync code reaches the session's group only
after its transaction commits; a rollback announces nothing."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from sessions_app.events import session_group
from sessions_app.services.events import event_append, frame_broadcast_on_commit
from sessions_app.services.sessions import session_create

pytestmark = pytest.mark.django_db(transaction=True)


async def _listen(group: str) -> str:
    layer = get_channel_layer()
    channel: str = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


def _drain(channel: str) -> list[dict]:  # type: ignore[type-arg]
    layer = get_channel_layer()

    async def read() -> list[dict]:  # type: ignore[type-arg]
        got = []
        while True:
            try:
                got.append(await asyncio.wait_for(layer.receive(channel), timeout=0.5))
            except TimeoutError:
                return got

    return async_to_sync(read)()


def test_frame_broadcast_on_commit_only_after_commit(user) -> None:  # type: ignore[no-untyped-def]
    chat = session_create(actor=user)
    channel = async_to_sync(_listen)(session_group(chat.pk))

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        frame = event_append(session_id=chat.pk, type="message.delta", payload={"delta": "x"})
        frame_broadcast_on_commit(session_id=chat.pk, frame=frame)
        raise Rollback
    assert _drain(channel) == []

    with transaction.atomic():
        frame = event_append(session_id=chat.pk, type="message.delta", payload={"delta": "y"})
        frame_broadcast_on_commit(session_id=chat.pk, frame=frame)
    (sent,) = _drain(channel)
    assert sent["frame"] == frame
    assert frame["delta"] == "y"
