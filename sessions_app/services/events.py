"""Numbered session events: stored first, then rung on the channel layer."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F

from sessions_app.events import GROUP_MESSAGE_TYPE, frame_of, session_group
from sessions_app.models import ChatSession, TurnEvent

logger = logging.getLogger("cortex.sessions")


def event_append(*, session_id: int, type: str, payload: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
    """Store one event with the session's next `seq`; returns the frame to broadcast."""
    with transaction.atomic():
        # The UPDATE takes the row lock, so concurrent writers get distinct, ordered seqs.
        ChatSession.objects.filter(pk=session_id).update(last_seq=F("last_seq") + 1)
        seq = ChatSession.objects.filter(pk=session_id).values_list("last_seq", flat=True).get()
        event = TurnEvent(session_id=session_id, seq=seq, type=type, payload=payload)
        event.full_clean(exclude=["session"])
        event.save()
    return frame_of(type=type, seq=seq, payload=payload)


async def frame_broadcast(*, session_id: int, frame: dict[str, Any]) -> None:
    """Ring the session's group; a lost frame is recovered by replay, so failures only log."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(
            session_group(session_id), {"type": GROUP_MESSAGE_TYPE, "frame": frame}
        )
    except Exception:  # a full or unreachable layer must never end a turn
        logger.warning("could not broadcast frame %s of session %s", frame.get("seq"), session_id)


def frame_broadcast_on_commit(*, session_id: int, frame: dict[str, Any]) -> None:
    """From sync services: broadcast once the surrounding transaction commits."""

    def send() -> None:
        try:
            async_to_sync(frame_broadcast)(session_id=session_id, frame=frame)
        except RuntimeError:  # called on an event loop thread: nothing to ring from here
            logger.debug("skipped broadcast of frame %s", frame.get("seq"))

    transaction.on_commit(send)
