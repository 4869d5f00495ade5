"""workspace_write: write or delete files of the chat session's shared workspace."""

from __future__ import annotations

import base64
import binascii
import io

from cortex.errors import CortexError
from tools.base import Tool, ToolContext, ToolResult
from tools.definitions.workspace_files import session_workspace
from tools.registry import registry


@registry.register
class WorkspaceWrite(Tool):
    name = "workspace_write"
    description = (
        "Write a file (the whole file, `content`) or delete a file or folder in the chat "
        "session's shared workspace. The hub stores it and every attached node receives it "
        "within seconds, in the session folder where shell commands start."
    )
    parameters = {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["write", "delete"]},
            "path": {"type": "string", "minLength": 1, "maxLength": 4096},
            "content": {"type": "string", "maxLength": 4_000_000},
            "encoding": {"type": "string", "enum": ["utf-8", "base64"], "default": "utf-8"},
        },
        "required": ["action", "path"],
        "additionalProperties": False,
    }
    risk = "write"

    def run(
        self,
        *,
        context: ToolContext,
        action: str,
        path: str,
        content: str = "",
        encoding: str = "utf-8",
    ) -> ToolResult:
        from accounts.context import TOOL_CONTEXT
        from workspaces import services

        workspace = session_workspace(context)
        try:
            if action == "delete":
                count = services.workspace_file_delete(
                    actor=context.user,
                    session=workspace.session,
                    path=path,
                    audit_context=TOOL_CONTEXT,
                )
                return ToolResult(text=f"Deleted {path} ({count} file(s)).", data={"files": count})
            try:
                data = (
                    base64.b64decode(content, validate=True)
                    if encoding == "base64"
                    else content.encode("utf-8")
                )
            except (binascii.Error, ValueError):
                return ToolResult.error("invalid_input", "content is not valid base64.")
            row = services.workspace_file_write(
                actor=context.user,
                session=workspace.session,
                path=path,
                body=io.BytesIO(data),
                audit_context=TOOL_CONTEXT,
            )
            return ToolResult(
                text=f"Wrote {row.path} ({row.size} bytes); the nodes follow.",
                data={"path": row.path, "size": row.size, "sha256": row.sha256},
            )
        except CortexError as exc:
            return ToolResult.error(exc.code, exc.message, path=path)
