"""sessions_app/services/sessions.py: `message_fail` closes an unfinished answer and its pending
approvals and records the frames a client replays."""

from __future__ import annotations

import pytest

from sessions_app.models import Message, ToolApproval, TurnEvent
from sessions_app.services.approvals import approval_open
from sessions_app.services.messages import message_post
from sessions_app.services.sessions import message_fail, session_create

pytestmark = pytest.mark.django_db


def _turn(user):  # type: ignore[no-untyped-def]
    chat = session_create(actor=user)
    _, assistant = message_post(actor=user, session=chat, content="hi", start_turn=False)
    approval, _ = approval_open(
        session_id=chat.pk,
        message_id=assistant.pk,
        tool_call_id="c1",
        tool_name="mesh_terminal",
        node_id="",
        arguments={},
        reason="risk:exec",
        timeout=60,
    )
    return chat, assistant, approval


def _events(chat) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def,type-arg]
    return [(e.type, e.payload) for e in TurnEvent.objects.filter(session=chat).order_by("seq")]


def test_message_fail_failed_emits_error_then_done(user) -> None:  # type: ignore[no-untyped-def]
    chat, assistant, approval = _turn(user)
    message_fail(message=assistant, code="provider_error", text="The provider said no.")
    stored = Message.objects.get(pk=assistant.pk)
    assert (stored.status, stored.error_code, stored.error_message) == (
        "failed",
        "provider_error",
        "The provider said no.",
    )
    assert stored.finished_at is not None
    assert ToolApproval.objects.get(pk=approval.pk).status == "cancelled"
    events = _events(chat)[1:]  # after tool.approval_required
    assert events == [
        (
            "error",
            {
                "message_id": assistant.pk,
                "error": {"code": "provider_error", "message": "The provider said no."},
            },
        ),
        (
            "message.done",
            {
                "message_id": assistant.pk,
                "status": "failed",
                "error_code": "provider_error",
                "final": True,
            },
        ),
    ]


def test_message_fail_cancelled_emits_only_done(user) -> None:  # type: ignore[no-untyped-def]
    chat, assistant, _ = _turn(user)
    message_fail(message=assistant, code="cancelled", text="Stopped.", status="cancelled")
    assert Message.objects.get(pk=assistant.pk).status == "cancelled"
    assert [t for t, _ in _events(chat)] == ["tool.approval_required", "message.done"]
