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
        "files; what a node changed itself shows as drift (workspace_files status, with "
        "diffs). Give node_id and resolve to settle drift: keep (the source's version "
        "overwrites the node's) or promote (the node's version becomes the source's)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "node_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "resolve": {"type": "string", "enum": ["keep", "promote"]},
            "paths": {"type": "array", "items": {"type": "string", "maxLength": 4096}},
        },
        "additionalProperties": False,
    }
    risk = "write"

    def run(
        self,
        *,
        context: ToolContext,
        node_id: str = "",
        resolve: str = "",
        paths: list[str] | None = None,
    ) -> ToolResult:
        from cortex.errors import CortexError
        from workspaces.services.sync import workspace_drift_resolve, workspace_resync

        workspace = session_workspace(context)
        if resolve or node_id:
            if not (resolve and node_id):
                return ToolResult.error("invalid_input", "resolve needs node_id and resolve.")
            try:
                workspace_drift_resolve(
                    actor=context.user,
                    workspace=workspace,
                    node_id=node_id,
                    action=resolve,
                    paths=paths,
                )
            except CortexError as exc:
                return ToolResult.error(exc.code, exc.message)
            return ToolResult(text=f"Drift on {node_id} resolved ({resolve}); the nodes follow.")
        workspace_resync(actor=context.user, workspace_id=workspace.pk)
        return ToolResult(text="Resync started; check progress with workspace_files status.")
