"""The Django admin shows chat metadata only: no message text anywhere, for admins either."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sessions_app.models import ChatSession, Message, ToolApproval, TurnEvent

pytestmark = pytest.mark.django_db

SECRET = "PRIVATE-CHAT-TEXT-7731"


@pytest.fixture
def admin_client_(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def chat(user):  # type: ignore[no-untyped-def]
    session = ChatSession.objects.create(owner=user, title=f"{SECRET} title")
    asked = Message.objects.create(session=session, role="user", content=f"{SECRET} question")
    answer = Message.objects.create(
        session=session,
        turn=asked,
        role="assistant",
        content=f"{SECRET} answer",
        tool_calls=[{"id": "c1", "name": "run", "arguments": {"command": f"echo {SECRET}"}}],
        error_message=f"{SECRET} error",
    )
    tool = Message.objects.create(
        session=session,
        turn=asked,
        role="tool",
        tool_name="run",
        tool_call_id="c1",
        tool_result={"stdout": f"{SECRET} output"},
    )
    approval = ToolApproval.objects.create(
        session=session,
        message=answer,
        tool_call_id="c1",
        tool_name="run",
        arguments={"command": f"echo {SECRET}"},
        reason=f"{SECRET} reason",
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    TurnEvent.objects.create(session=session, seq=1, type="message.delta", payload={"t": SECRET})
    return session, [asked, answer, tool], approval


def test_admin_pages_never_show_chat_text(admin_client_, chat) -> None:
    session, messages, approval = chat
    pages = [
        "/admin/sessions_app/chatsession/",
        f"/admin/sessions_app/chatsession/{session.pk}/change/",
        f"/admin/sessions_app/chatsession/{session.pk}/delete/",
        "/admin/sessions_app/message/",
        "/admin/sessions_app/toolapproval/",
        f"/admin/sessions_app/toolapproval/{approval.pk}/change/",
    ] + [f"/admin/sessions_app/message/{m.pk}/change/" for m in messages]
    for url in pages:
        response = admin_client_.get(url)
        assert response.status_code == 200, url
        assert SECRET not in response.content.decode(), url
    # The metadata is there.
    listing = admin_client_.get("/admin/sessions_app/message/").content.decode()
    assert "assistant" in listing


def test_admin_search_does_not_reach_into_chat_text(admin_client_, chat) -> None:
    for model in ("chatsession", "message", "toolapproval"):
        response = admin_client_.get(f"/admin/sessions_app/{model}/", {"q": SECRET})
        assert response.status_code == 200
        changelist = response.context["cl"]
        # Either no search at all, or one that finds nothing by the chat's words.
        assert not changelist.search_fields or changelist.result_count == 0, model
