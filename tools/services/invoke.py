"""Calling a tool for the model: validate, check grants, run, and audit every refusal."""

from __future__ import annotations

import logging
from typing import Any

from jsonschema import Draft202012Validator

from accounts.context import TOOL_CONTEXT
from accounts.services import audit_record
from cortex.errors import CortexError
from tools.base import Tool, ToolContext, ToolRefusal, ToolResult
from tools.registry import registry
from tools.selectors import tool_names_switched_off_for_user

logger = logging.getLogger("cortex.tools")

MAX_ERRORS_SHOWN = 5


def _refuse(
    *, context: ToolContext, name: str, code: str, message: str, **details: Any
) -> ToolResult:
    """Audit a refused call (nothing was dispatched) and turn it into a result for the model."""
    audit_record(
        actor=context.user,
        action="tool.refused",
        target_type="tool",
        target_id=name[:255],
        audit_context=TOOL_CONTEXT,
        details={
            "reason": code,
            "message": message,
            "chat_session_id": context.chat_session_id,
            "message_id": context.message_id,
            "tool_call_id": context.tool_call_id,
            **details,
        },
    )
    return ToolResult.error(code, message, **details)


def _argument_errors(tool: Tool, arguments: Any) -> list[str]:
    validator = Draft202012Validator(tool.parameters)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    messages = []
    for error in errors[:MAX_ERRORS_SHOWN]:
        where = "/".join(str(p) for p in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages


def _preflight(*, tool: Tool, context: ToolContext, arguments: dict[str, Any]) -> None:
    """Refuse (raise ToolRefusal) before anything runs: nodes and workspace paths."""
    node_ids = tool.node_ids(arguments)
    for node_id in node_ids:
        context.node_for_tool(node_id, tool=tool)
    for key in tool.path_arguments:
        value = arguments.get(key)
        if isinstance(value, str):
            for node_id in node_ids:
                context.workspace_path(node_id, value)


def tool_invoke(*, context: ToolContext, name: str, arguments: dict[str, Any]) -> ToolResult:
    """Run tool `name` for the model; never raises for the model's mistakes.

    Unknown tools, switched-off tools, invalid arguments and nodes or paths outside the session
    come back as a ToolResult with `error_code`, audited as `tool.refused`, with nothing
    dispatched. Successful dispatches are audited by `mesh.services.task_dispatch`.
    """
    tool = registry.get(name)
    if tool is None:
        return _refuse(
            context=context, name=name, code="unknown_tool", message=f"No tool named '{name}'."
        )
    if name in tool_names_switched_off_for_user(user=context.user):
        return _refuse(
            context=context,
            name=name,
            code="tool_disabled",
            message=f"The tool '{name}' is switched off by an administrator.",
        )
    if not isinstance(arguments, dict):
        return _refuse(
            context=context,
            name=name,
            code="invalid_arguments",
            message="Arguments must be a JSON object.",
        )
    problems = _argument_errors(tool, arguments) or tool.check_arguments(arguments)
    if problems:
        return _refuse(
            context=context,
            name=name,
            code="invalid_arguments",
            message="Invalid arguments: " + "; ".join(problems),
            arguments=sorted(arguments),
        )
    try:
        _preflight(tool=tool, context=context, arguments=arguments)
        return tool.run(context=context, **arguments)
    except ToolRefusal as refusal:
        return _refuse(
            context=context,
            name=name,
            code=refusal.code,
            message=refusal.message,
            **refusal.details,
        )
    except CortexError as exc:
        # Mesh refused the dispatch (grant, skill, sandbox policy): nothing was queued.
        return _refuse(context=context, name=name, code=exc.code, message=exc.message)
    except Exception:
        logger.exception("Tool %s failed", name)
        return ToolResult.error("tool_failed", f"The tool '{name}' failed unexpectedly.")
