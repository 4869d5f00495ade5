"""sessions_app/services/messages.py: one turn at a time, none in an archived session; a cancel
marks the session for the runner and needs a running turn."""

from __future__ import annotations

import pytest

from sessions_app.models import ChatSession
from sessions_app.services.messages import (
    NoTurnRunning,
    SessionArchived,
    TurnInProgress,
    message_post,
    turn_cancel,
    turn_may_start,
)
from sessions_app.services.sessions import session_create

pytestmark = pytest.mark.django_db


def test_turn_may_start_refuses_archived_and_busy_sessions(user) -> None:  # type: ignore[no-untyped-def]
    chat = session_create(actor=user)
    turn_may_start(session=chat)
    _, assistant = message_post(actor=user, session=chat, content="hi", start_turn=False)
    with pytest.raises(TurnInProgress) as busy:
        turn_may_start(session=chat)
    assert busy.value.code == "turn_in_progress"
    assistant.status = "done"
    assistant.save(update_fields=["status"])
    turn_may_start(session=chat)
    chat.is_archived = True
    with pytest.raises(SessionArchived) as archived:
        turn_may_start(session=chat)
    assert archived.value.code == "session_archived"


def test_turn_cancel_marks_the_running_turn(user) -> None:  # type: ignore[no-untyped-def]
    chat = session_create(actor=user)
    with pytest.raises(NoTurnRunning) as idle:
        turn_cancel(actor=user, session=chat)
    assert idle.value.code == "no_turn_running"
    assert ChatSession.objects.get(pk=chat.pk).cancel_requested_at is None

    _, assistant = message_post(actor=user, session=chat, content="hi", start_turn=False)
    assert turn_cancel(actor=user, session=chat) == assistant
    assert ChatSession.objects.get(pk=chat.pk).cancel_requested_at is not None

    # The runner ended the turn; a new message clears the mark for the next turn.
    assistant.status = "cancelled"
    assistant.save(update_fields=["status"])
    message_post(actor=user, session=chat, content="again", start_turn=False)
    assert ChatSession.objects.get(pk=chat.pk).cancel_requested_at is None
