"""Tasks as their users read them: lists, one task, its stored output."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from accounts.selectors import user_is_admin
from cortex.errors import NotFound
from mesh.models import Node, Task, TaskOutputChunk
from mesh.selectors.access import node_list_for_user


def task_list_for_user(*, user: Any) -> QuerySet[Task]:
    """Tasks on nodes the user may use."""
    nodes = node_list_for_user(user=user)
    base = Task.objects.select_related("node", "requested_by")
    if user_is_admin(user):
        return base.order_by("-created_at")
    return base.filter(node__in=nodes.values("pk")).order_by("-created_at")


def task_list_for_node(
    *, user: Any, node: Node, statuses: list[str] | None = None
) -> QuerySet[Task]:
    """The node's tasks, newest first; only those in `statuses` when given."""
    tasks = task_list_for_user(user=user).filter(node=node)
    return tasks.filter(status__in=statuses) if statuses else tasks


def task_get_for_user(*, user: Any, task_id: Any) -> Task:
    """The task if it runs on a node `user` may use; NotFound otherwise (also for bad ids)."""
    try:
        key = uuid.UUID(str(task_id))
    except ValueError as exc:
        raise NotFound("No such task.", code="task_not_found") from exc
    task = task_list_for_user(user=user).filter(pk=key).first()
    if task is None:
        raise NotFound("No such task.", code="task_not_found")
    return task


def task_output(*, task: Task, after_seq: int = 0, limit: int = 1000) -> list[TaskOutputChunk]:
    """Stored output chunks after `after_seq`, in order."""
    limit = max(1, min(int(limit), 5000))
    return list(
        TaskOutputChunk.objects.filter(task=task, seq__gt=after_seq).order_by("seq")[:limit]
    )


def dropped_marker(dropped: int) -> str:
    return f"\n[... {dropped} bytes of output dropped ...]\n"


def task_text(*, task: Task) -> tuple[str, str]:
    """(stdout, stderr) decoded; a marker stands where the output cap dropped bytes."""
    out: dict[str, list[str]] = {"stdout": [], "stderr": []}
    chunks = list(
        TaskOutputChunk.objects.filter(task=task)
        .order_by("seq")
        .only("seq", "stream", "data", "offset")
    )
    present = {chunk.stream for chunk in chunks}
    pending: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    previous_end: int | None = None
    for chunk in chunks:
        if task.dropped_bytes and previous_end is not None and chunk.offset > previous_end:
            for stream in present:
                if pending[stream]:
                    out[stream].append(pending[stream].decode("utf-8", "replace"))
                    pending[stream] = bytearray()
                out[stream].append(dropped_marker(task.dropped_bytes))
        pending[chunk.stream] += bytes(chunk.data)
        previous_end = chunk.offset + len(bytes(chunk.data))
    for stream in out:
        if pending[stream]:
            out[stream].append(pending[stream].decode("utf-8", "replace"))
    return "".join(out["stdout"]), "".join(out["stderr"])
