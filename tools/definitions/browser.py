"""browser: navigate, screenshot and read page text on an attached node that has a browser."""

from __future__ import annotations

from typing import Any

from tools.base import Tool, ToolContext, ToolResult
from tools.registry import registry
from tools.task_render import render_tasks


@registry.register
class Browser(Tool):
    name = "browser"
    description = (
        "Drive the headless browser of an attached node that reports one: `navigate` to a "
        "http(s) URL, take a `screenshot` of the current page, or get the page's `text`."
    )
    parameters = {
        "type": "object",
        "properties": {
            "node_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "action": {"type": "string", "enum": ["navigate", "screenshot", "text"]},
            "url": {"type": "string", "pattern": "^https?://", "maxLength": 4096},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 300, "default": 60},
        },
        "required": ["node_id", "action"],
        "additionalProperties": False,
    }
    risk = "network"
    skill = "browser"
    capability = "browser"
    node_arguments = ("node_id",)

    def check_arguments(self, arguments: dict[str, Any]) -> list[str]:
        if arguments.get("action") == "navigate" and "url" not in arguments:
            return ["url is required for navigate"]
        if arguments.get("action") != "navigate" and "url" in arguments:
            return ["url is only for navigate"]
        return []

    def run(
        self,
        *,
        context: ToolContext,
        node_id: str,
        action: str,
        url: str | None = None,
        timeout: float = 60,
    ) -> ToolResult:
        node = context.node_for_tool(node_id, tool=self)
        payload: dict[str, Any] = {"action": action}
        if url is not None:
            payload["url"] = url
        task = context.dispatch(node=node, kind="browser", payload=payload, timeout=timeout)
        task = context.wait(task=task, timeout=float(timeout) + min(5.0, float(timeout)))
        return render_tasks(context=context, tasks=[task])
