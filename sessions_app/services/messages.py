"""Posting a user message (which starts a turn) and cancelling the running turn."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from cortex import errors
from sessions_app.models import ChatSession, Message, MessageRole, MessageStatus
from sessions_app.services.sessions import UNFINISHED, turns_reap_stale


class TurnInProgress(errors.Conflict):
    code = "turn_in_progress"
    default_message = "The assistant is still answering; wait for it or cancel it."


class NoTurnRunning(errors.Conflict):
    code = "no_turn_running"
    default_message = "No answer is being produced in this session."


class SessionArchived(errors.Conflict):
    code = "session_archived"
    default_message = "This session is archived; unarchive it to continue."


def turn_may_start(*, session: ChatSession) -> None:
    """Raise SessionArchived or TurnInProgress; run under the session's row lock to be sure."""
    if session.is_archived:
        raise SessionArchived()
    if Message.objects.filter(
        session=session, role=MessageRole.ASSISTANT, status__in=UNFINISHED
    ).exists():
        raise TurnInProgress()


def message_post(
    *,
    actor: User,
    session: ChatSession,
    content: str,
    audio_name: str = "",
    audio_duration_ms: int | None = None,
    start_turn: bool = True,
) -> tuple[Message, Message]:
    """Store the user's message, then a pending assistant message, then start the turn.

    The user's words are committed before anything else happens; the turn starts only after
    the commit, outside the request (see `turn_schedule`). `audio_name` is the storage name of
    the recording a spoken message was transcribed from (see `message_post_audio`).
    `start_turn=False` leaves the turn to the caller (a scheduled agent's run awaits it).
    """
    from sessions_app.services.scheduler import turn_schedule

    turns_reap_stale(session_ids=[session.pk])
    with transaction.atomic():
        session = ChatSession.objects.select_for_update().get(pk=session.pk)
        turn_may_start(session=session)
        user_message = Message(
            session=session,
            role=MessageRole.USER,
            content=content,
            status=MessageStatus.DONE,
            audio=audio_name,
            audio_duration_ms=audio_duration_ms,
        )
        user_message.full_clean(exclude=["session", "turn"])
        user_message.save()
        assistant = Message(
            session=session,
            turn=user_message,
            role=MessageRole.ASSISTANT,
            status=MessageStatus.PENDING,
            heartbeat_at=timezone.now(),
        )
        assistant.full_clean(exclude=["session", "turn"])
        assistant.save()
        session.cancel_requested_at = None
        fields = ["cancel_requested_at", "updated_at"]
        if not session.title:
            session.title = " ".join(content.split())[:80]
            fields.append("title")
        session.save(update_fields=fields)
        assistant_id = assistant.pk
        if start_turn:
            transaction.on_commit(lambda: turn_schedule(assistant_message_id=assistant_id))
    return user_message, assistant


def turn_cancel(*, actor: User, session: ChatSession) -> Message:
    """Ask the running turn to stop; the runner (in whichever process) sees it within a poll."""
    turns_reap_stale(session_ids=[session.pk])
    with transaction.atomic():
        session = ChatSession.objects.select_for_update().get(pk=session.pk)
        running = (
            Message.objects.filter(
                session=session, role=MessageRole.ASSISTANT, status__in=UNFINISHED
            )
            .order_by("-id")
            .first()
        )
        if running is None:
            raise NoTurnRunning()
        session.cancel_requested_at = timezone.now()
        session.save(update_fields=["cancel_requested_at"])
    return running
