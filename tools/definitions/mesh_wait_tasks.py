"""mesh_wait_tasks: wait for tasks started earlier (background or timed-out) and read them."""

from __future__ import annotations

import time

from tools.base import Tool, ToolContext, ToolResult
from tools.registry import registry
from tools.task_render import render_tasks


@registry.register
class MeshWaitTasks(Tool):
    name = "mesh_wait_tasks"
    description = (
        "Wait for tasks started earlier in this session (for example by mesh_terminal with "
        "background=true) and return their status and output so far. Waits up to `timeout` "
        "seconds (default 30) for all of them to finish; timeout 0 only peeks."
    )
    parameters = {
        "type": "object",
        "properties": {
            "task_ids": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 64},
                "minItems": 1,
                "maxItems": 32,
                "uniqueItems": True,
            },
            "timeout": {"type": "number", "minimum": 0, "maximum": 3600, "default": 30},
        },
        "required": ["task_ids"],
        "additionalProperties": False,
    }
    risk = "read"

    def run(self, *, context: ToolContext, task_ids: list[str], timeout: float = 30) -> ToolResult:
        tasks = [context.task(task_id) for task_id in task_ids]
        deadline = time.monotonic() + float(timeout)
        tasks = [
            context.wait(task=task, timeout=max(0.0, deadline - time.monotonic())) for task in tasks
        ]
        return render_tasks(context=context, tasks=tasks)
