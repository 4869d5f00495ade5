"""Sessions: create, change, delete; attach and detach nodes; end turns whose runner died."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from cortex import errors
from cortex.services import model_update
from sessions_app.events import FrameType
from sessions_app.models import (
    ApprovalStatus,
    ChatSession,
    Message,
    MessageRole,
    MessageStatus,
    SessionNode,
    ToolApproval,
)
from sessions_app.services.conf import turn_limits
from sessions_app.services.events import event_append, frame_broadcast_on_commit

UNFINISHED = (MessageStatus.PENDING, MessageStatus.STREAMING)


class NodeAlreadyAttached(errors.Conflict):
    code = "node_already_attached"
    default_message = "This node is attached to the session already."


class UnknownProvider(errors.ValidationFailed):
    code = "unknown_provider"


def session_create(
    *,
    actor: User,
    title: str = "",
    approval_policy: str | None = None,
    provider: str = "",
    model: str = "",
) -> ChatSession:
    """A new chat; without an explicit policy it starts with the owner's default."""
    session = ChatSession(owner=actor, title=title, provider=provider, model=model)
    session.approval_policy = approval_policy or actor.default_approval_policy
    session.full_clean()
    session.save()
    return session


def session_update(*, actor: User, session: ChatSession, data: dict[str, Any]) -> ChatSession:
    """Rename, archive, change the approval policy or the provider/model override.

    An override is checked against the preferences layers now (locks, allowed providers and
    models), so a rule-breaking choice is a 400 here rather than a failed turn later.
    """
    if "provider" in data or "model" in data:
        from preferences.selectors import resolve

        override = {
            k: data.get(k, getattr(session, k))
            for k in ("provider", "model")
            if data.get(k, getattr(session, k))
        }
        if override:
            resolve(user=actor, kind="llm", session_override=override)
    was_archived = session.is_archived
    session, _ = model_update(
        instance=session,
        fields=("title", "is_archived", "approval_policy", "provider", "model"),
        data=data,
    )
    if session.is_archived and not was_archived:
        _work_close(actor=actor, session_id=session.pk, attachments=session.nodes.all())
    return session


def _work_close(*, actor: User, session_id: int, attachments: Any, every_node: bool = True) -> None:
    """The chat ended (or left these nodes): after commit, its browser context on the attached
    nodes closes and the AI's persistent shells hang up (on every node, or on these only)."""
    from mesh.services.browser import browser_session_close
    from mesh.services.terminal_shell import shell_close

    nodes = [attachment.node for attachment in attachments.select_related("node")]

    def close() -> None:
        if nodes:
            browser_session_close(actor=actor, chat_session_id=session_id, nodes=nodes)
        shell_close(actor=actor, chat_session_id=session_id, nodes=None if every_node else nodes)

    transaction.on_commit(close)


def session_delete(*, actor: User, session: ChatSession) -> None:
    """Delete the session and its messages; mesh tasks it started stay (they are audited).

    Recordings of spoken messages and the browser screenshots its tasks stored (chat content)
    leave storage once the delete is committed.
    """
    from mesh.models import Task
    from mesh.services import browser_screenshots_delete

    names = [
        name
        for name in Message.objects.filter(session=session).values_list("audio", flat=True)
        if name
    ]
    with transaction.atomic():
        browser_screenshots_delete(
            task_ids=Task.objects.filter(chat_session_id=session.pk, kind="browser").values_list(
                "pk", flat=True
            )
        )
        _work_close(actor=actor, session_id=session.pk, attachments=session.nodes.all())
        session.delete()

    def delete_recordings() -> None:
        for name in names:
            default_storage.delete(name)

    if names:
        transaction.on_commit(delete_recordings)


def node_attach(
    *, actor: User, session: ChatSession, node_id: str, working_dir: str = ""
) -> SessionNode:
    """Attach a node the actor may use; other nodes answer 404 like a missing one."""
    from mesh import selectors as mesh_selectors

    node = mesh_selectors.node_get_for_user(user=actor, node_id=node_id)
    if SessionNode.objects.filter(session=session, node=node).exists():
        raise NodeAlreadyAttached()
    attachment = SessionNode(session=session, node=node, working_dir=working_dir, attached_by=actor)
    attachment.full_clean(exclude=["session", "node"])
    attachment.save()
    return attachment


def node_detach(*, actor: User, attachment: SessionNode) -> None:
    """Detach: what already runs keeps running, but no new tool call may target the node (and
    the session's browser context and persistent shell on it close)."""
    _work_close(
        actor=actor,
        session_id=attachment.session_id,
        attachments=SessionNode.objects.filter(pk=attachment.pk),
        every_node=False,
    )
    attachment.delete()


def turns_reap_stale(*, session_ids: list[int] | None = None, owner: User | None = None) -> int:
    """End turns whose runner stopped beating (its process died): `failed`, `interrupted`.

    Run by the sweeper (`cortex.sweeps`, registered in `SessionsAppConfig.ready`) and before
    a new turn starts or a turn is cancelled, so a restarted web process leaves every turn in a
    clear state without a start-up hook, and no read writes. Returns the count.
    """
    cutoff = timezone.now() - timedelta(seconds=turn_limits().stale_after)
    stale = Message.objects.filter(role=MessageRole.ASSISTANT, status__in=UNFINISHED).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    if session_ids is not None:
        stale = stale.filter(session_id__in=session_ids)
    if owner is not None:
        stale = stale.filter(session__owner=owner)
    count = 0
    for message_id in list(stale.values_list("id", flat=True)):
        with transaction.atomic():
            message = (
                Message.objects.select_for_update()
                .filter(pk=message_id, status__in=UNFINISHED)
                .first()
            )
            if message is None:
                continue
            message_fail(
                message=message,
                code="interrupted",
                text="The hub stopped while this answer was being produced.",
            )
            count += 1
    return count


def message_fail(*, message: Message, code: str, text: str, status: str = "failed") -> None:
    """Close an unfinished assistant message and its pending approvals; emits error + done."""
    now = timezone.now()
    message.status = status
    message.error_code = code
    message.error_message = text
    message.finished_at = now
    message.save(update_fields=["status", "error_code", "error_message", "finished_at"])
    ToolApproval.objects.filter(
        session_id=message.session_id, status=ApprovalStatus.PENDING
    ).update(status=ApprovalStatus.CANCELLED, decided_at=now)
    if status == MessageStatus.FAILED:
        frame = event_append(
            session_id=message.session_id,
            type=FrameType.ERROR,
            payload={
                "message_id": message.pk,
                "error": {"code": code, "message": text},
            },
        )
        frame_broadcast_on_commit(session_id=message.session_id, frame=frame)
    frame = event_append(
        session_id=message.session_id,
        type=FrameType.MESSAGE_DONE,
        payload={
            "message_id": message.pk,
            "status": status,
            "error_code": code,
            "final": True,
        },
    )
    frame_broadcast_on_commit(session_id=message.session_id, frame=frame)


def screenshots_of_deleted_chats_sweep(*, limit: int = 500) -> int:
    """Screenshots of browser tasks whose chat is gone (deleted before screenshots left with
    it, or a delete whose storage step failed) leave storage."""
    from mesh.models import Task
    from mesh.services import browser_screenshots_delete

    orphans = (
        Task.objects.filter(
            kind="browser", chat_session_id__isnull=False, result__screenshot__stored=True
        )
        .exclude(chat_session_id__in=ChatSession.objects.values("pk"))
        .values_list("pk", flat=True)[:limit]
    )
    with transaction.atomic():
        return browser_screenshots_delete(task_ids=list(orphans))
