"""sessions_app/services/approvals.py: a pending approval is decided once (audited with its
chat message), times out when polled past its deadline, and `remember` makes a rule or nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from sessions_app.models import ApprovalRule, ToolApproval
from sessions_app.services.approval_rules import RuleNotPossible
from sessions_app.services.approvals import (
    ApprovalDecided,
    approval_decide,
    approval_open,
    approval_poll,
)
from sessions_app.services.messages import message_post
from sessions_app.services.sessions import session_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(user, box) -> ToolApproval:  # type: ignore[no-untyped-def]
    chat = session_create(actor=user, approval_policy="ask")
    _, assistant = message_post(actor=user, session=chat, content="go", start_turn=False)
    approval, frame = approval_open(
        session_id=chat.pk,
        message_id=assistant.pk,
        tool_call_id="call-1",
        tool_name="mesh_terminal",
        node_id="box",
        arguments={"node_id": "box", "command": "git status"},
        reason="risk:exec",
        timeout=60,
    )
    assert frame["type"] == "tool.approval_required"
    assert frame["approval_id"] == approval.pk
    return approval


@pytest.mark.parametrize(("approve", "status"), [(True, "approved"), (False, "denied")])
def test_approval_decide_once_and_audited(user, pending, approve, status) -> None:  # type: ignore[no-untyped-def]
    decided = approval_decide(actor=user, approval=pending, approve=approve)
    assert (decided.status, decided.decided_by) == (status, user)
    assert decided.decided_at is not None
    row = AuditEvent.objects.get(action=f"sessions.approval.{status}")
    assert row.details["tool_call_id"] == "call-1"
    assert row.details["turn_message_id"] == decided.message.turn_id
    assert row.details["arguments"] == {"node_id": "box", "command": "git status"}
    with pytest.raises(ApprovalDecided) as again:
        approval_decide(actor=user, approval=pending, approve=not approve)
    assert again.value.code == "approval_already_decided"
    assert ToolApproval.objects.get(pk=pending.pk).status == status


def test_approval_decide_with_remember_makes_a_rule(user, pending) -> None:  # type: ignore[no-untyped-def]
    approval_decide(actor=user, approval=pending, approve=True, remember="session")
    rule = ApprovalRule.objects.get()
    assert (rule.session_id, rule.command_patterns) == (pending.session_id, ["git status"])


def test_a_rule_that_cannot_be_made_decides_nothing(user, pending) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleNotPossible):
        approval_decide(actor=user, approval=pending, approve=True, remember="me", patterns=["ls"])
    assert ToolApproval.objects.get(pk=pending.pk).status == "pending"
    assert not ApprovalRule.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="sessions.approval.").exists()


def test_approval_poll_times_out_a_late_approval_once(user, pending) -> None:  # type: ignore[no-untyped-def]
    assert approval_poll(approval_id=pending.pk) == "pending"
    ToolApproval.objects.filter(pk=pending.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert approval_poll(approval_id=pending.pk) == "timed_out"
    assert approval_poll(approval_id=pending.pk) == "timed_out"
    (row,) = AuditEvent.objects.filter(action="sessions.approval.timed_out")
    assert (row.actor, row.source) == (None, "system")
    assert row.details["owner_id"] == user.pk
    with pytest.raises(ApprovalDecided):
        approval_decide(actor=user, approval=pending, approve=True)


def test_approval_poll_leaves_a_decided_approval_alone(user, pending) -> None:  # type: ignore[no-untyped-def]
    approval_decide(actor=user, approval=pending, approve=False)
    ToolApproval.objects.filter(pk=pending.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert approval_poll(approval_id=pending.pk) == "denied"
