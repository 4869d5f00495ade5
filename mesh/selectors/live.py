"""Selectors of the live consoles: snapshots, output replays and the stats history.

Grant-aware like the rest of mesh.selectors (they build on `access`): each takes the user's id
and loads the user fresh, so a socket that has been open for hours sees today's grants and
flags, not the ones it connected with.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth.backends import ModelBackend
from django.utils import timezone

from cortex.errors import NotAuthenticated, NotFound
from mesh.agent.skill_names import Skill
from mesh.models import OPEN_STATUSES, Node, NodeStatsSample, Task, TaskOutputChunk
from mesh.selectors import access, nodes, tasks

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from accounts.models import User

#: Most stored chunks one replay or gap fill sends; a client missing more refetches over REST.
REPLAY_LIMIT = 1000


def user_fresh(*, user_id: int) -> User:
    """The active user with this id (inactive or deleted users raise NotAuthenticated)."""
    user = ModelBackend().get_user(user_id)
    if user is None:
        raise NotAuthenticated()
    return user


def node_card(node: Node) -> dict[str, Any]:
    """What a console shows of a node."""
    return {
        "node_id": node.node_id,
        "display_name": node.display_name,
        "status": node.status,
        "offline_reason": node.offline_reason,
        "last_seen_at": node.last_seen_at.isoformat() if node.last_seen_at else None,
        "is_active": node.is_active,
        "stats": node.stats or {},
        "agent": nodes.node_agent_info(node=node),
    }


def task_card(task: Task) -> dict[str, Any]:
    return {
        "task_id": str(task.pk),
        "kind": task.kind,
        "command": (task.payload or {}).get("command", ""),
        "status": task.status,
        "last_seq": task.last_seq,
        "exit_code": task.exit_code,
        "created_at": task.created_at.isoformat(),
    }


def node_visible(*, user_id: int, node_id: str) -> bool:
    """Whether the user may still see (and so watch) the node."""
    try:
        access.node_get_for_user(user=user_fresh(user_id=user_id), node_id=node_id)
    except (NotFound, NotAuthenticated):
        return False
    return True


def node_snapshot(*, user_id: int, node_id: str, recent: int = 20) -> dict[str, Any]:
    """The node, whether the user may run commands, its open tasks and the latest ones.

    Raises NotFound when the node is not visible. `last_seq` of each task tells the client
    what to fetch from `GET /api/v1/tasks/{id}/output/?after_seq=N`.
    """
    user = user_fresh(user_id=user_id)
    node = access.node_get_for_user(user=user, node_id=node_id)
    listed = tasks.task_list_for_node(user=user, node=node)
    open_tasks = list(listed.filter(status__in=OPEN_STATUSES).order_by("created_at")[:100])
    latest = list(listed.order_by("-created_at")[:recent])
    can_run = access.node_usable_for(user=user, node=node, skill=Skill.SHELL.value)
    return {
        "node": node_card(node),
        "can_run": can_run,
        "open_tasks": [task_card(t) for t in open_tasks],
        "recent_tasks": [task_card(t) for t in latest],
    }


def chunk_frame(task_id: str, chunk: TaskOutputChunk) -> dict[str, Any]:
    """A stored chunk in the shape of a live `task.output` frame."""
    from mesh.services.live_output import LIVE_FRAME_LIMIT  # services import selectors

    data = bytes(chunk.data)
    return {
        "type": "task.output",
        "seq": chunk.seq,
        "first_seq": chunk.seq,
        "task_id": task_id,
        "stream": chunk.stream,
        "data": data[:LIVE_FRAME_LIMIT].decode("utf-8", "replace"),
        "truncated": len(data) > LIVE_FRAME_LIMIT,
        "replayed": True,
    }


def output_replay(
    *, user_id: int, node_id: str, after_seq: int, task_ids: list[str]
) -> list[dict[str, Any]]:
    """Stored output after `after_seq` of the given tasks of this node, as task.output frames."""
    user = user_fresh(user_id=user_id)
    node = access.node_get_for_user(user=user, node_id=node_id)
    frames: list[dict[str, Any]] = []
    for task_id in task_ids:
        try:
            task = tasks.task_get_for_user(user=user, task_id=task_id)
        except NotFound:
            continue
        if task.node_id != node.pk:
            continue
        chunks = tasks.task_output(task=task, after_seq=after_seq, limit=REPLAY_LIMIT)
        frames.extend(chunk_frame(str(task.pk), chunk) for chunk in chunks)
    return frames


def output_gap(
    *, user_id: int, task_id: str, after_seq: int, before_seq: int
) -> list[dict[str, Any]]:
    """Stored chunks strictly between two seqs (a frame the channel layer dropped)."""
    user = user_fresh(user_id=user_id)
    task = tasks.task_get_for_user(user=user, task_id=task_id)
    limit = max(1, min(before_seq - after_seq - 1, REPLAY_LIMIT))
    chunks = tasks.task_output(task=task, after_seq=after_seq, limit=limit)
    return [chunk_frame(task_id, c) for c in chunks if c.seq < before_seq]


def nodes_snapshot(*, user_id: int) -> list[dict[str, Any]]:
    """Every node the user may see, as console cards."""
    user = user_fresh(user_id=user_id)
    return [node_card(node) for node in access.node_list_for_user(user=user)]


def stats_history(*, user: User | AnonymousUser, node_id: str) -> dict[str, Any]:
    """The node's downsampled stats over the history window (NotFound if not visible)."""
    from mesh.services.stats import stats_bucket_seconds, stats_history_seconds

    node = access.node_get_for_user(user=user, node_id=node_id)
    since = timezone.now() - timedelta(seconds=stats_history_seconds())
    samples = NodeStatsSample.objects.filter(node=node, taken_at__gte=since).order_by("taken_at")
    return {
        "node_id": node.node_id,
        "interval_seconds": stats_bucket_seconds(),
        "window_seconds": stats_history_seconds(),
        "samples": list(samples),
    }
