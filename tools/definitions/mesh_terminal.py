"""mesh_terminal: run a shell command on one attached node, or on several in parallel."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from cortex.errors import CortexError
from tools.base import Tool, ToolContext, ToolResult
from tools.registry import registry
from tools.task_render import render_tasks

if TYPE_CHECKING:
    from mesh.models import Task

DEFAULT_TIMEOUT = 30
WAIT_GRACE = 5.0  # the node reports timed_out itself; give the report time to arrive


@registry.register
class MeshTerminal(Tool):
    name = "mesh_terminal"
    description = (
        "Run a shell command on a node attached to this chat session, or on several nodes in "
        "parallel (node_ids). Returns as soon as the command ends, with exit code, stdout and "
        "stderr; the command is stopped after `timeout` seconds (default 30). With "
        "background=true it returns the task ids at once and the command runs on: collect the "
        "result later with mesh_wait_tasks. The command runs in the session's working "
        "directory and is checked against the node's sandbox policy. With persistent=true "
        "(one node_id) it runs in this chat's own shell on that node: cd and exported "
        "variables persist between calls (the first call starts the shell)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "minLength": 1, "maxLength": 16384},
            "node_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "node_ids": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 64},
                "minItems": 1,
                "maxItems": 32,
                "uniqueItems": True,
            },
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 86400,
                "default": DEFAULT_TIMEOUT,
                "description": "Seconds the command may run (and the call waits).",
            },
            "background": {"type": "boolean", "default": False},
            "persistent": {"type": "boolean", "default": False},
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    risk = "exec"
    skill = "shell"
    node_arguments = ("node_id", "node_ids")

    def check_arguments(self, arguments: dict[str, Any]) -> list[str]:
        if ("node_id" in arguments) == ("node_ids" in arguments):
            return ["give exactly one of node_id and node_ids"]
        if arguments.get("persistent") and ("node_ids" in arguments or arguments.get("background")):
            return ["persistent=true runs on one node_id and cannot run in the background"]
        return []

    def run(
        self,
        *,
        context: ToolContext,
        command: str,
        node_id: str | None = None,
        node_ids: list[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        background: bool = False,
        persistent: bool = False,
    ) -> ToolResult:
        if persistent and node_id is not None:
            return self._persistent(context, node_id, command, timeout)
        targets = self.node_ids({"node_id": node_id, "node_ids": node_ids})
        nodes = [context.node_for_tool(target, tool=self) for target in targets]
        tasks: list[Task] = []
        refused: list[tuple[str, CortexError]] = []
        for node in nodes:
            payload: dict[str, Any] = {"command": command}
            cwd = context.working_dir(node.node_id)
            if cwd:
                payload["cwd"] = cwd
            try:
                tasks.append(
                    context.dispatch(node=node, kind="shell", payload=payload, timeout=timeout)
                )
            except CortexError as exc:
                if len(nodes) == 1:
                    raise
                refused.append((node.node_id, exc))
        if not tasks:
            raise refused[0][1]
        if not background:
            deadline = time.monotonic() + float(timeout) + min(WAIT_GRACE, float(timeout))
            tasks = [context.wait(task=task, timeout=deadline - time.monotonic()) for task in tasks]
        result = render_tasks(context=context, tasks=tasks, background=background)
        for refused_node, error in refused:
            result.text += f"\n[{refused_node}] refused ({error.code}): {error.message}"
            result.data.setdefault("refused", []).append(
                {"node_id": refused_node, "error_code": error.code, "message": error.message}
            )
        return result

    def _persistent(
        self, context: ToolContext, node_id: str, command: str, timeout: float
    ) -> ToolResult:
        """One command in the chat session's shell on the node (see mesh terminal_shell)."""
        from mesh.services import terminal_shell

        node = context.node_for_tool(node_id, tool=self)
        if context.chat_session_id is None:
            return ToolResult.error("no_chat_session", "A persistent shell needs a chat session.")
        result = terminal_shell.shell_run(
            actor=context.user,
            node=node,
            chat_session_id=context.chat_session_id,
            command=command,
            timeout=timeout,
            confirmed=context.confirmed,
            cwd=context.working_dir(node.node_id),
        )
        if result.timed_out:
            status = f"timed out after {timeout:g} s (interrupted with Ctrl-C)"
        elif result.ended:
            status = f"the shell ended (exit {result.exit_code}); the next call starts a new one"
        else:
            status = f"exit {result.exit_code}"
        return ToolResult(
            text=f"[{node.node_id}] {status}\n{result.output}",
            data={
                "node_id": node.node_id,
                "terminal_session": result.session_id,
                "exit_code": result.exit_code,
                "timed_out": result.timed_out,
                "output": result.output,
            },
            error_code="timeout" if result.timed_out else "",
        )
