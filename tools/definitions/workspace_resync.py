"""workspace_resync: ask every node for its files again and bring it back to the source."""

from __future__ import annotations

from tools.base import Tool, ToolContext, ToolResult
from tools.definitions.workspace_files import session_workspace
from tools.registry import registry


@registry.register
class WorkspaceResync(Tool):
    name = "workspace_resync"
    description = (
        "Resynchronise the chat session's shared workspace: every attached node reports its "
        "files and gets the source's version of whatever differs (this keeps the source's "
        "version over drift on a node)."
    )
    parameters = {"type": "object", "properties": {}, "additionalProperties": False}
    risk = "write"

    def run(self, *, context: ToolContext) -> ToolResult:
        from workspaces.services.sync import workspace_resync

        workspace = session_workspace(context)
        workspace_resync(actor=context.user, workspace_id=workspace.pk)
        return ToolResult(text="Resync started; check progress with workspace_files status.")
