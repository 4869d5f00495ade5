"""workspace_files: list, read, search and sync status of the chat session's shared workspace."""

from __future__ import annotations

from typing import Any

from cortex.errors import CortexError
from tools.base import Tool, ToolContext, ToolRefusal, ToolResult
from tools.registry import registry

READ_LIMIT = 256 * 1024


def session_workspace(context: ToolContext) -> Any:
    """The session's workspace, refused without a session or a workspace."""
    from workspaces import selectors

    if context.chat_session_id is None:
        raise ToolRefusal("no_chat_session", "Workspaces belong to chat sessions.")
    try:
        workspace = selectors.workspace_for_user(
            user=context.user, session_id=context.chat_session_id
        )
    except CortexError as exc:
        raise ToolRefusal(exc.code, exc.message) from exc
    if workspace.pk is None or workspace.source == "none":
        raise ToolRefusal("workspace_disabled", "This session has no shared workspace.")
    return workspace


@registry.register
class WorkspaceFiles(Tool):
    name = "workspace_files"
    description = (
        "Read the chat session's shared workspace (the folder every attached node sees, under "
        "the session folder on each node; shell commands start there). Actions: list a folder, "
        "read a file, search file names and text for `query`, status (each node's sync state "
        "and any drift). Reads come from the hub's mirror, no node is asked."
    )
    parameters = {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["list", "read", "search", "status"]},
            "path": {"type": "string", "maxLength": 4096, "default": ""},
            "query": {"type": "string", "minLength": 1, "maxLength": 200},
        },
        "required": ["action"],
        "additionalProperties": False,
    }
    risk = "read"

    def run(
        self, *, context: ToolContext, action: str, path: str = "", query: str = ""
    ) -> ToolResult:
        from workspaces import selectors

        workspace = session_workspace(context)
        try:
            if action == "list":
                entries = selectors.workspace_file_list(workspace=workspace, path=path)
                lines = [
                    f"{e.path}/" if e.kind == "directory" else f"{e.path}  ({e.size} bytes)"
                    for e in entries
                ]
                return ToolResult(
                    text="\n".join(lines) or "(empty)",
                    data={"entries": [{"path": e.path, "kind": e.kind} for e in entries]},
                )
            if action == "read":
                row, handle = selectors.workspace_file_open(workspace=workspace, path=path)
                with handle:
                    data = handle.read(READ_LIMIT + 1)
                try:
                    text = data[:READ_LIMIT].decode("utf-8")
                except UnicodeDecodeError:
                    return ToolResult.error("not_text", f"{row.path} is not UTF-8 text.")
                if len(data) > READ_LIMIT:
                    text += f"\n[... truncated at {READ_LIMIT} of {row.size} bytes]"
                return ToolResult(text=text, data={"path": row.path, "sha256": row.sha256})
            if action == "search":
                if not query:
                    return ToolResult.error("invalid_input", "search needs `query`.")
                hits = selectors.workspace_search(workspace=workspace, query=query, path=path)
                lines = [
                    f"{h['path']}:{h['line']}: {h['text']}" if h["line"] else h["path"]
                    for h in hits
                ]
                return ToolResult(text="\n".join(lines) or "(no match)", data={"hits": hits})
            rows = selectors.workspace_nodes(workspace=workspace)
            nodes = [
                {
                    "node_id": r.node.node_id,
                    "state": r.state,
                    "pending": r.pending,
                    "drift": r.drift,
                }
                for r in rows
            ]
            lines = [f"source: {workspace.source}"] + [
                f"{n['node_id']}: {n['state']} ({n['pending']} pending)"
                + (f" drift: {n['drift']}" if n["drift"] else "")
                for n in nodes
            ]
            return ToolResult(
                text="\n".join(lines), data={"source": workspace.source, "nodes": nodes}
            )
        except CortexError as exc:
            return ToolResult.error(exc.code, exc.message, path=path)
