"""Read-side queries of the mesh app; grant-aware ones return only what `user` may see."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from cortex.errors import NotFound
from mesh.models import Node, NodeGroupAccess, NodeInvite, Task, TaskOutputChunk


def _is_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def node_list_for_user(*, user: Any) -> QuerySet[Node]:
    """Admins see every node (with grants and invites prefetched); others their groups' nodes."""
    if _is_admin(user):
        return Node.objects.prefetch_related(
            Prefetch(
                "group_access",
                queryset=NodeGroupAccess.objects.select_related("group").order_by("group__name"),
            ),
            Prefetch("invites", queryset=NodeInvite.objects.order_by("-created_at", "-id")),
        ).order_by("node_id")
    if not (user and user.is_authenticated and user.is_active):
        return Node.objects.none()
    visible = NodeGroupAccess.objects.filter(group__user=user).values("node_id")
    return Node.objects.filter(pk__in=visible).order_by("node_id")


def node_get_for_user(*, user: Any, node_id: str) -> Node:
    """The node if `user` may see it; NotFound otherwise."""
    node = node_list_for_user(user=user).filter(node_id=node_id).first()
    if node is None:
        raise NotFound("No such node.", code="node_not_found")
    return node


def user_can_use_node(*, user: Any, node: Node) -> bool:
    """Admins use every node; others need a grant to one of their groups."""
    if _is_admin(user):
        return True
    if not (user and user.is_authenticated and user.is_active):
        return False
    return NodeGroupAccess.objects.filter(node=node, group__user=user).exists()


def node_user_ids(*, node: Node) -> list[int]:
    """Ids of the users who may see `node` (for per-user live frames)."""
    from accounts.models import User

    return list(
        User.objects.filter(Q(is_staff=True) | Q(groups__node_access__node=node), is_active=True)
        .distinct()
        .values_list("id", flat=True)
    )


def node_user_ids_many(*, node_pks: list[int]) -> dict[int, list[int]]:
    """`node_user_ids` of many nodes in two queries (node pk -> user ids), for batched frames."""
    from accounts.models import User

    staff = set(User.objects.filter(is_staff=True, is_active=True).values_list("id", flat=True))
    out: dict[int, set[int]] = {pk: set(staff) for pk in node_pks}
    pks = list(out)
    members, qn = User.groups.through._meta, connection.ops.quote_name
    # By hand: once per heartbeat flush, and the ORM prepares each IN value in Python.
    sql = (
        "SELECT DISTINCT a.node_id, u.id"  # noqa: S608  # names from the models only
        f" FROM {qn(NodeGroupAccess._meta.db_table)} a"
        f" JOIN {qn(members.db_table)} m ON m.group_id = a.group_id"
        f" JOIN {qn(User._meta.db_table)} u ON u.id = m.user_id"
        " WHERE u.is_active = %s AND a.node_id IN"
    )
    for start in range(0, len(pks), 500):
        chunk = pks[start : start + 500]
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} ({', '.join(['%s'] * len(chunk))})", [True, *chunk])
            for node_pk, user_id in cursor.fetchall():
                out[node_pk].add(user_id)
    return {pk: sorted(ids) for pk, ids in out.items()}


def task_list_for_user(*, user: Any) -> QuerySet[Task]:
    """Tasks on nodes the user may use."""
    nodes = node_list_for_user(user=user)
    base = Task.objects.select_related("node", "requested_by")
    if _is_admin(user):
        return base.order_by("-created_at")
    return base.filter(node__in=nodes.values("pk")).order_by("-created_at")


def task_list_for_node(*, user: Any, node: Node) -> QuerySet[Task]:
    return task_list_for_user(user=user).filter(node=node)


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


def group_for_grant(*, group_id: Any) -> Any:
    """The auth group an admin grants or revokes access for; NotFound if it does not exist."""
    from django.contrib.auth.models import Group

    group = Group.objects.filter(pk=group_id).first()
    if group is None:
        raise NotFound("No such group.", code="group_not_found")
    return group


def invite_state(*, node: Node) -> dict[str, Any]:
    """State of the node's latest invite (uses prefetched invites when present)."""
    from django.utils import timezone

    invites = list(node.invites.all())
    if not invites:
        return {"state": "none", "expires_at": None, "used_at": None}
    latest = max(invites, key=lambda i: (i.created_at, i.pk))
    if latest.used_at is not None:
        state = "used"
    elif latest.revoked_at is not None:
        state = "revoked"
    elif latest.expires_at <= timezone.now():
        state = "expired"
    else:
        state = "pending"
    return {"state": state, "expires_at": latest.expires_at, "used_at": latest.used_at}


def node_find(*, node_id: str) -> Node | None:
    """A node by its id with no grant scoping: for operators' management commands only."""
    return Node.objects.filter(node_id=node_id).first()
