"""browser: drive the persistent browser of an attached node (one context per chat session).

The actions and their arguments are the one contract in `mesh/agent/browser_actions.py`, which
the node's skill validates with too; this tool only adds `node_id` and `timeout`.
"""

from __future__ import annotations

from typing import Any

from mesh.agent.browser_actions import ACTIONS, ActionError, json_schema, validate_action
from tools.base import Risk, Tool, ToolContext, ToolResult
from tools.registry import registry
from tools.task_render import render_tasks

TOOL_KEYS = ("node_id", "timeout")


@registry.register
class Browser(Tool):
    name = "browser"
    description = (
        "Drive the headless browser of an attached node that reports one. The browser keeps "
        "its tabs and pages between calls in this chat. Typical use: `navigate` to a URL, "
        "`snapshot` to see the page's elements with refs like [ref=e12], then `click`/`type`/"
        "`select`/`hover` by `ref` (or a CSS `selector`), `text` to read, `screenshot` to show "
        "the user. `evaluate` runs JavaScript only where the node allows it, after approval. "
        "Files a page downloads land in this chat's workspace under downloads/ when it has one; "
        "the result names each one's `workspace_path`."
    )
    parameters = json_schema(
        extra_properties={
            "node_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 300, "default": 60},
        }
    )
    parameters["required"] = ["node_id", "action"]
    risk = "network"
    skill = "browser"
    capability = "browser"
    node_arguments = ("node_id",)

    def check_arguments(self, arguments: dict[str, Any]) -> list[str]:
        try:
            validate_action(arguments, extra=TOOL_KEYS)
        except ActionError as exc:
            return [exc.message]
        return []

    def call_risk(self, arguments: dict[str, Any]) -> Risk:
        """Typing, pressing keys, choosing options and scripts count as writes (approvals)."""
        action = ACTIONS.get(arguments.get("action", ""))
        return action.risk if action is not None else self.risk  # type: ignore[return-value]

    def approval_reason(self, arguments: dict[str, Any]) -> str:
        """Running JavaScript always waits for a person, whatever the session's policy."""
        action = ACTIONS.get(arguments.get("action", ""))
        return "browser_evaluate" if action is not None and action.needs_approval else ""

    def refused_anyway(self, arguments: dict[str, Any], nodes: list[Any]) -> bool:
        """JavaScript on a node whose policy forbids it: refused without asking anyone."""
        from mesh.services.browser import browser_policy_of

        action = ACTIONS.get(arguments.get("action", ""))
        if action is None or not action.needs_approval:
            return False
        policies = [browser_policy_of(node) for node in nodes]
        return any(policy is None or not policy.allow_evaluate for policy in policies)

    def run(
        self, *, context: ToolContext, node_id: str, timeout: float = 60, **arguments: Any
    ) -> ToolResult:
        from workspaces.selectors import workspace_downloads_target

        node = context.node_for_tool(node_id, tool=self)
        # With a workspace, the chat's downloads land in its folder on the node.
        downloads = workspace_downloads_target(session_id=context.chat_session_id, node=node)
        task = context.dispatch(
            node=node,
            kind="browser",
            payload=arguments,
            timeout=timeout,
            browser_downloads=downloads,
        )
        task = context.wait(task=task, timeout=float(timeout) + min(5.0, float(timeout)))
        return render_tasks(context=context, tasks=[task])
