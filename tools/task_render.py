"""How tasks read back to the model (text) and to the UI (data), shared by the mesh tools."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tools.base import ToolContext, ToolResult

if TYPE_CHECKING:
    from mesh.models import Task

HEAD_CHARS = 10_000
TAIL_CHARS = 30_000


def clip(text: str, *, head: int = HEAD_CHARS, tail: int = TAIL_CHARS) -> str:
    """Keep the head and the tail of long output, with a marker saying what was cut."""
    if len(text) <= head + tail:
        return text
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut for the model ...]\n{text[-tail:]}"


def task_data(*, context: ToolContext, task: Task) -> dict[str, Any]:
    """One task as the UI and the model see it."""
    stdout, stderr = context.task_text(task=task)
    return {
        "task_id": str(task.pk),
        "node_id": task.node.node_id,
        "kind": task.kind,
        "status": task.status,
        "exit_code": task.exit_code,
        "error_code": task.error_code,
        "error_message": task.error_message,
        "stdout": stdout,
        "stderr": stderr,
        "result": task.result,
        "node_status": task.node.status,
        "deliver_by": task.deliver_by.isoformat() if task.deliver_by else None,
    }


BULKY_KEYS = ("base64", "png", "jpeg", "image", "screenshot")


def _for_model(result: Any) -> Any:
    """The result without bulky binary payloads (screenshots stay in `data` for the UI)."""
    if isinstance(result, dict):
        return {
            key: (
                f"[{len(value)} characters of {key}, shown to the user]"
                if isinstance(value, str)
                and len(value) > 1000
                and any(word in key.lower() for word in BULKY_KEYS)
                else _for_model(value)
            )
            for key, value in result.items()
        }
    if isinstance(result, list):
        return [_for_model(value) for value in result]
    return result


def task_block(item: dict[str, Any]) -> str:
    """The text block of one task for the model."""
    head = f"[{item['node_id']}] task {item['task_id']}: {item['status']}"
    if item["exit_code"] is not None:
        head += f", exit code {item['exit_code']}"
    if item["error_code"]:
        head += f", {item['error_code']}"
    lines = [head]
    if item["error_message"]:
        lines.append(f"error: {item['error_message']}")
    result = item["result"]
    content = None
    # The text a task read (a file's content, a page's text or accessibility snapshot) reads
    # as itself, not as an escaped JSON string.
    key = "content"
    if item.get("kind") == "browser" and isinstance(result, dict):
        key = next((k for k in ("snapshot", "text") if isinstance(result.get(k), str)), key)
    if (
        isinstance(result, dict)
        and isinstance(result.get(key), str)
        and result.get("encoding", "utf-8") != "base64"
    ):
        content = result[key]
        result = {name: value for name, value in result.items() if name != key}
    if result not in (None, {}, ""):
        lines.append(clip(json.dumps(_for_model(result), ensure_ascii=False, indent=1)))
    if content is not None:
        lines.append(f"{key}:\n" + clip(content))
    if item["stdout"]:
        lines.append(clip(item["stdout"].rstrip("\n")))
    if item["stderr"]:
        lines.append("stderr:\n" + clip(item["stderr"].rstrip("\n")))
    lines += _state_notes(item)
    return "\n".join(lines)


def _state_notes(item: dict[str, Any]) -> list[str]:
    """What an unfinished or undelivered task means: never "running" for one that did not
    reach its node."""
    node, status = item["node_id"], item["status"]
    offline = item.get("node_status") == "offline"
    if status == "timed_out" and item["error_code"] == "not_delivered":
        why = f"node '{node}' is offline" if offline else f"node '{node}' did not take it in time"
        return [f"(not delivered: {why}; the command never ran and will not run)"]
    if status == "queued":
        deadline = item.get("deliver_by") or "its delivery deadline"
        if offline:
            return [
                f"(not delivered: node '{node}' is offline, so the command has not run. It is "
                f"dropped without running if the node is not back by {deadline}; call "
                "mesh_wait_tasks with this task id to learn what became of it)"
            ]
        return [
            f"(not started yet: waiting for node '{node}' to take it, until {deadline}; call "
            "mesh_wait_tasks with this task id for the rest)"
        ]
    if status in ("dispatched", "running"):
        return ["(still running: call mesh_wait_tasks with this task id for the rest)"]
    return []


def render_tasks(
    *, context: ToolContext, tasks: list[Task], background: bool = False
) -> ToolResult:
    """A ToolResult for tasks just started (background) or waited on."""
    task_ids = [str(task.pk) for task in tasks]
    if background:
        started = ", ".join(f"{task.node.node_id}: {task.pk}" for task in tasks)
        return ToolResult(
            text=f"Started in the background ({started}). Collect with mesh_wait_tasks.",
            data={
                "tasks": [
                    {"task_id": str(t.pk), "node_id": t.node.node_id, "status": t.status}
                    for t in tasks
                ]
            },
            task_ids=task_ids,
        )
    items = [task_data(context=context, task=task) for task in tasks]
    return ToolResult(
        text="\n\n".join(task_block(item) for item in items),
        data={"tasks": items},
        task_ids=task_ids,
    )
