"""Read-side queries of sessions_app: only the caller's own sessions exist for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.files import File
from django.db.models import QuerySet

from accounts.models import User
from cortex import errors
from sessions_app.models import (
    ApprovalRule,
    ApprovalStatus,
    ChatSession,
    Message,
    SessionNode,
    ToolApproval,
    TurnEvent,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def session_list_for_user(*, user: User | AnonymousUser) -> QuerySet[ChatSession]:
    """The user's own sessions (admins included: a chat is private)."""
    if not isinstance(user, User):  # anonymous: no sessions
        return ChatSession.objects.none()
    return ChatSession.objects.filter(owner=user).order_by("-updated_at", "-id")


def session_get_for_user(*, user: User | AnonymousUser, session_id: Any) -> ChatSession:
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


def message_audio_open(*, session: ChatSession, message_id: Any) -> tuple[File[bytes], str]:
    """(the open recording, its MIME type) of a spoken message, read through Django's storage."""
    from providers.audio import ACCEPTED_FORMATS

    message = message_get(session=session, message_id=message_id)
    if not message.audio or not message.audio.name:
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


def approval_list(*, session: ChatSession, include_decided: bool = False) -> QuerySet[ToolApproval]:
    """The session's approvals, oldest first: pending ones, or all with who decided them."""
    rows = ToolApproval.objects.filter(session=session).select_related("decided_by")
    if not include_decided:
        rows = rows.filter(status=ApprovalStatus.PENDING)
    return rows.order_by("id")


def approval_rule_list_for_user(*, user: User | AnonymousUser) -> QuerySet[ApprovalRule]:
    """The user's own standing rules (admins included: rules are personal)."""
    if not isinstance(user, User):  # anonymous: no sessions
        return ApprovalRule.objects.none()
    return (
        ApprovalRule.objects.filter(owner=user)
        .select_related("node", "session")
        .order_by("-created_at", "-id")
    )


def llm_choices(*, user: User, session: ChatSession) -> dict[str, Any]:
    """What the chat's model picker may offer: the effective provider and model (with the
    session's override), the layer that locks either, and the models groups allow."""
    from preferences.selectors import resolve

    override = {k: getattr(session, k) for k in ("provider", "model") if getattr(session, k)}
    error = None
    try:
        resolution = resolve(user=user, kind="llm", session_override=override or None)
    except errors.CortexError as exc:
        error = {"code": exc.code, "message": exc.message}
        resolution = resolve(user=user, kind="llm")
    model = resolution.entries.get("model")
    allowed_models = sorted({m for v in resolution.limits["models"].values() for m in v})
    allowed_providers = sorted({p for v in resolution.limits["providers"].values() for p in v})
    return {
        "provider": resolution.provider,
        "model": str(model.value) if model and model.value else "",
        "model_source": model.source if model else "",
        "session_provider": session.provider,
        "session_model": session.model,
        "locked": {
            k: v for k, v in resolution.locked_by.items() if k in ("provider", "model", "base_url")
        },
        "allowed_models": allowed_models,
        "allowed_providers": allowed_providers,
        "error": error,
    }


def approval_count_waiting() -> int:
    """Tool calls waiting for a person's decision, across all sessions (metrics)."""
    return ToolApproval.objects.filter(status=ApprovalStatus.PENDING).count()
