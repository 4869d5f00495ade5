"""The user's yes or no to a tool call, and the runner's side: open, wait, expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record
from cortex import errors
from sessions_app.events import FrameType
from sessions_app.models import ApprovalStatus, ToolApproval
from sessions_app.services.events import event_append


class ApprovalDecided(errors.Conflict):
    code = "approval_already_decided"
    default_message = "This tool call was decided already."


def _audit_details(approval: ToolApproval) -> dict[str, Any]:
    message = approval.message
    return {
        "session_id": approval.session_id,
        "message_id": approval.message_id,
        "turn_message_id": message.turn_id,
        "tool_call_id": approval.tool_call_id,
        "tool": approval.tool_name,
        "node_id": approval.node_id,
        "arguments": approval.arguments,
        "reason": approval.reason,
    }


def approval_decide(
    *,
    actor: User,
    approval: ToolApproval,
    approve: bool,
    audit_context: AuditContext = DEFAULT_CONTEXT,
    remember: str = "",
    patterns: list[str] | None = None,
) -> ToolApproval:
    """Approve or deny a pending tool call; audited with the chat message it belongs to.

    `remember` ("session" or "me") with an approval also stores a standing rule for calls like
    this one; a rule that cannot be made refuses the whole answer, so nothing is decided.
    """
    from sessions_app.services.approval_rules import approval_rule_create

    with transaction.atomic():
        approval = (
            ToolApproval.objects.select_for_update()
            .select_related("message", "session")
            .get(pk=approval.pk)
        )
        if approval.status != ApprovalStatus.PENDING:
            raise ApprovalDecided()
        if approve and remember:
            approval_rule_create(
                actor=actor,
                approval=approval,
                remember=remember,
                patterns=patterns,
                audit_context=audit_context,
            )
        approval.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED
        approval.decided_by = actor
        approval.decided_at = timezone.now()
        approval.save(update_fields=["status", "decided_by", "decided_at"])
        audit_record(
            actor=actor,
            action="sessions.approval.approved" if approve else "sessions.approval.denied",
            target_type="tool_approval",
            target_id=approval.pk,
            audit_context=audit_context,
            details=_audit_details(approval),
        )
    return approval


def approval_open(
    *,
    session_id: int,
    message_id: int,
    tool_call_id: str,
    tool_name: str,
    node_id: str,
    arguments: dict[str, Any],
    reason: str,
    timeout: float,
) -> tuple[ToolApproval, dict[str, Any]]:
    """Record a pending approval and its `tool.approval_required` frame (runner side)."""
    with transaction.atomic():
        approval = ToolApproval(
            session_id=session_id,
            message_id=message_id,
            tool_call_id=tool_call_id,
            tool_name=tool_name,
            node_id=node_id,
            arguments=arguments,
            reason=reason,
            expires_at=timezone.now() + timedelta(seconds=timeout),
        )
        approval.full_clean(exclude=["session", "message"])
        approval.save()
        frame = event_append(
            session_id=session_id,
            type=FrameType.TOOL_APPROVAL_REQUIRED,
            payload={
                "approval_id": approval.pk,
                "message_id": message_id,
                "tool_call_id": tool_call_id,
                "tool": tool_name,
                "node_id": node_id,
                "arguments": arguments,
                "reason": reason,
                "expires_at": approval.expires_at.isoformat(),
            },
        )
    return approval, frame


def approval_poll(*, approval_id: int) -> str:
    """The approval's status; a pending one past its deadline times out here (denied, audited)."""
    with transaction.atomic():
        approval = (
            ToolApproval.objects.select_for_update()
            .select_related("message", "session")
            .get(pk=approval_id)
        )
        if approval.status == ApprovalStatus.PENDING and approval.expires_at <= timezone.now():
            approval.status = ApprovalStatus.TIMED_OUT
            approval.decided_at = timezone.now()
            approval.save(update_fields=["status", "decided_at"])
            audit_record(
                actor=None,
                action="sessions.approval.timed_out",
                target_type="tool_approval",
                target_id=approval.pk,
                audit_context=AuditContext.system("approval_timeout"),
                details={**_audit_details(approval), "owner_id": approval.session.owner_id},
            )
        return approval.status
