"""Read-side queries of sessions_app: only the caller's own sessions exist for them."""

from __future__ import annotations

from typing import Any

from django.core.files import File
from django.db.models import QuerySet

from cortex import errors
from sessions_app.models import (
    ApprovalStatus,
    ChatSession,
    Message,
    SessionNode,
    ToolApproval,
    TurnEvent,
)


def session_list_for_user(*, user: Any) -> QuerySet[ChatSession]:
    """The user's own sessions (admins included: a chat is private)."""
    if not getattr(user, "is_authenticated", False):
        return ChatSession.objects.none()
    return ChatSession.objects.filter(owner=user).order_by("-updated_at", "-id")


def session_get_for_user(*, user: Any, session_id: Any) -> ChatSession:
    """One of the user's sessions; anything else (or a malformed id) is NotFound."""
    try:
        return session_list_for_user(user=user).get(pk=int(session_id))
    except (ChatSession.DoesNotExist, TypeError, ValueError) as exc:
        raise errors.NotFound() from exc


def message_list(*, session: ChatSession) -> QuerySet[Message]:
    """Messages oldest first."""
    return Message.objects.filter(session=session).order_by("id")


def message_get(*, session: ChatSession, message_id: Any) -> Message:
    """One message of the session (already the caller's); anything else is NotFound."""
    try:
        return Message.objects.get(session=session, pk=int(message_id))
    except (Message.DoesNotExist, TypeError, ValueError) as exc:
        raise errors.NotFound() from exc


def message_audio_open(*, session: ChatSession, message_id: Any) -> tuple[File, str]:
    """(the open recording, its MIME type) of a spoken message, read through Django's storage."""
    from preferences.voice.audio import ACCEPTED_FORMATS

    message = message_get(session=session, message_id=message_id)
    if not message.audio:
        raise errors.NotFound("This message has no recording.", code="no_audio")
    extension = message.audio.name.rsplit(".", 1)[-1].lower()
    try:
        handle = message.audio.open("rb")
    except FileNotFoundError as exc:
        raise errors.NotFound("The recording is no longer stored.", code="no_audio") from exc
    return handle, ACCEPTED_FORMATS.get(extension, "application/octet-stream")


def attachment_list(*, session: ChatSession) -> QuerySet[SessionNode]:
    return SessionNode.objects.filter(session=session).select_related("node").order_by("id")


def attachment_get(*, session: ChatSession, node_id: str) -> SessionNode:
    try:
        return attachment_list(session=session).get(node__node_id=node_id)
    except SessionNode.DoesNotExist as exc:
        raise errors.NotFound() from exc


def approval_list_pending(*, session: ChatSession) -> QuerySet[ToolApproval]:
    return ToolApproval.objects.filter(session=session, status=ApprovalStatus.PENDING).order_by(
        "id"
    )


def approval_get(*, session: ChatSession, approval_id: Any) -> ToolApproval:
    try:
        return ToolApproval.objects.get(session=session, pk=int(approval_id))
    except (ToolApproval.DoesNotExist, TypeError, ValueError) as exc:
        raise errors.NotFound() from exc


def event_list_after(*, session_id: int, after_seq: int = 0, limit: int = 1000) -> list[TurnEvent]:
    """Stored frames with `seq` > after_seq, oldest first (replay for reconnecting clients)."""
    return list(
        TurnEvent.objects.filter(session_id=session_id, seq__gt=after_seq).order_by("seq")[:limit]
    )


def frames_after(*, session_id: int, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    from sessions_app.events import frame_of

    return [
        frame_of(type=e.type, seq=e.seq, payload=e.payload)
        for e in event_list_after(session_id=session_id, after_seq=after_seq, limit=limit)
    ]
