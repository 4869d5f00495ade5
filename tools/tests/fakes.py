"""Test tools made one way: a tool that records the one string argument it was called with and
answers a fixed text. Sessions and agents tests register them with `registry.temporarily`."""

from __future__ import annotations

from typing import Any, ClassVar

from tools.base import Tool, ToolContext, ToolResult


class RecordingTool(Tool):
    """Base of the tools `recording_tool` makes; `calls` lists the recorded values in order."""

    argument: ClassVar[str] = ""
    reply: ClassVar[str] = ""
    echo_data: ClassVar[bool] = False
    calls: ClassVar[list[str]] = []

    def run(self, *, context: ToolContext, **arguments: Any) -> ToolResult:
        value = arguments[self.argument]
        type(self).calls.append(value)
        data = {self.argument: value} if self.echo_data else {}
        return ToolResult(text=self.reply.format(value), data=data)


def recording_tool(
    name: str,
    *,
    risk: str,
    argument: str,
    reply: str,
    on_node: bool = False,
    echo_data: bool = False,
) -> type[RecordingTool]:
    """A tool `name` of `risk` taking the string `argument` (and `node_id` when `on_node`, which
    the hub then checks as a node argument); it answers `reply.format(value)`, and `echo_data`
    also returns {argument: value} as its data."""
    properties: dict[str, Any] = {argument: {"type": "string"}}
    if on_node:
        properties = {"node_id": {"type": "string"}, **properties}
    attrs: dict[str, Any] = {
        "name": name,
        "description": f"A test tool ({risk}) that records its {argument}.",
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
        "risk": risk,
        "node_arguments": ("node_id",) if on_node else (),
        "argument": argument,
        "reply": reply,
        "echo_data": echo_data,
        "calls": [],
    }
    return type(f"{name.title().replace('_', '')}Tool", (RecordingTool,), attrs)
