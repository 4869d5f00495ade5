"""mesh_files: list, stat, read, write, delete, move and copy in an attached node's workspace."""

from __future__ import annotations

from typing import Any

from tools.base import Tool, ToolContext, ToolResult
from tools.registry import registry
from tools.task_render import render_tasks

ACTIONS = ["list", "stat", "read", "write", "delete", "move", "copy"]
NEEDS_TO_PATH = ("move", "copy")


@registry.register
class MeshFiles(Tool):
    name = "mesh_files"
    description = (
        "Work with files in the session's workspace on an attached node: list a directory, "
        "stat, read or write a file (write replaces the whole file with `content`), delete "
        "(directories with recursive=true), "
        "and move or copy to `to_path`. Paths are relative to the workspace; paths outside it "
        "are refused."
    )
    parameters = {
        "type": "object",
        "properties": {
            "node_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "action": {"type": "string", "enum": ACTIONS},
            "path": {"type": "string", "minLength": 1, "maxLength": 4096},
            "to_path": {"type": "string", "minLength": 1, "maxLength": 4096},
            "content": {"type": "string", "maxLength": 4_000_000},
            "encoding": {"type": "string", "enum": ["utf-8", "base64"], "default": "utf-8"},
            "recursive": {"type": "boolean", "default": False},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600, "default": 30},
        },
        "required": ["node_id", "action", "path"],
        "additionalProperties": False,
    }
    risk = "write"
    skill = "files"
    node_arguments = ("node_id",)
    path_arguments = ("path", "to_path")

    def check_arguments(self, arguments: dict[str, Any]) -> list[str]:
        action = arguments.get("action")
        problems = []
        if action in NEEDS_TO_PATH and "to_path" not in arguments:
            problems.append(f"to_path is required for {action}")
        if action not in NEEDS_TO_PATH and "to_path" in arguments:
            problems.append(f"to_path is only for move and copy, not {action}")
        if action == "write" and "content" not in arguments:
            problems.append("content is required for write")
        if action != "write" and "content" in arguments:
            problems.append(f"content is only for write, not {action}")
        if action != "delete" and "recursive" in arguments:
            problems.append(f"recursive is only for delete, not {action}")
        return problems

    def run(
        self,
        *,
        context: ToolContext,
        node_id: str,
        action: str,
        path: str,
        to_path: str | None = None,
        content: str | None = None,
        encoding: str = "utf-8",
        recursive: bool = False,
        timeout: float = 30,
    ) -> ToolResult:
        node = context.node_for_tool(node_id, tool=self)
        payload: dict[str, Any] = {
            "action": action,
            "path": context.workspace_path(node_id, path),
        }
        if to_path is not None:
            payload["to_path"] = context.workspace_path(node_id, to_path)
        if content is not None:
            payload["content"] = content
        if action in ("read", "write"):
            payload["encoding"] = encoding
        if recursive:
            payload["recursive"] = True
        task = context.dispatch(node=node, kind="files", payload=payload, timeout=timeout)
        task = context.wait(task=task, timeout=float(timeout) + min(5.0, float(timeout)))
        return render_tasks(context=context, tasks=[task])
