"""Admins switch tools off for everyone or for one group; each change is audited."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.services import audit_record
from cortex.errors import Conflict, ValidationFailed
from tools.models import ToolSwitch
from tools.registry import registry
from tools.services.skills import groups_by_id

if TYPE_CHECKING:
    from accounts.models import User


class UnknownTool(ValidationFailed):
    code = "unknown_tool"
    default_message = "No tool with this name."


class ToolSwitchExists(Conflict):
    code = "tool_switch_exists"
    default_message = "This tool is already switched off for this scope."


def tool_switch_create(
    *,
    actor: User,
    tool_name: str,
    group_id: int | None = None,
    reason: str = "",
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> ToolSwitch:
    """Switch tool `tool_name` off for group `group_id`, or for everyone when it is None."""
    if tool_name not in registry:
        raise UnknownTool(fields={"tool_name": [f"No tool named '{tool_name}'."]})
    group = groups_by_id([group_id], field="group")[0] if group_id is not None else None
    switch = ToolSwitch(tool_name=tool_name, group=group, reason=reason, created_by=actor)
    switch.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            switch.save()
            audit_record(
                actor=actor,
                action="tool.switched_off",
                target_type="tool",
                target_id=tool_name,
                audit_context=audit_context,
                details={"group": group.pk if group else None, "reason": reason},
            )
    except IntegrityError as exc:
        raise ToolSwitchExists() from exc
    return switch


def tool_switch_delete(
    *, actor: User, switch: ToolSwitch, audit_context: AuditContext = DEFAULT_CONTEXT
) -> None:
    """Switch the tool back on for the switch's scope."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="tool.switched_on",
            target_type="tool",
            target_id=switch.tool_name,
            audit_context=audit_context,
            details={"group": switch.group_id},
        )
        switch.delete()
