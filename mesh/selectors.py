"""Read-side queries of the mesh app; grant-aware ones return only what `user` may see."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL

from cortex.errors import NotFound, ValidationFailed
from mesh import rawsql
from mesh.models import Node, NodeGroupAccess, NodeInvite, Task, TaskOutputChunk


def _is_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def node_list_for_user(*, user: Any, admin_details: bool = False) -> QuerySet[Node]:
    """Admins see every node, others their groups' nodes. `admin_details` prefetches what the
    admin view of a node shows (grants and invites): two more queries, only where shown."""
    if _is_admin(user):
        nodes = Node.objects.order_by("node_id")
        if not admin_details:
            return nodes
        return nodes.prefetch_related(
            Prefetch(
                "group_access",
                queryset=NodeGroupAccess.objects.select_related("group").order_by("group__name"),
            ),
            Prefetch("invites", queryset=NodeInvite.objects.order_by("-created_at", "-id")),
        )
    if not (user and user.is_authenticated and user.is_active):
        return Node.objects.none()
    visible = NodeGroupAccess.objects.filter(group__user=user).values("node_id")
    return Node.objects.filter(pk__in=visible).order_by("node_id")


#: The columns `NodeUserOutput` reads: the user list loads only these, as rows, not models
#: (building a model and decoding the sandbox policy cost more per row than the query).
NODE_USER_FIELDS = (
    "node_id",
    "display_name",
    "description",
    "capabilities",
    "version",
    "status",
    "offline_reason",
    "last_seen_at",
    "stats",
    "is_active",
    "skill_config",
)


def _tables() -> tuple[str, str, str]:
    """Quoted tables of nodes, grants and group memberships, for the hand-written list SQL."""
    from accounts.models import User

    return rawsql.table(Node), rawsql.table(NodeGroupAccess), rawsql.table(User.groups.through)


class VisibleNodes:
    """A user's granted nodes as Django's Paginator reads them: `count()`, then one slice.

    The count reads only the grants, and the page is chosen by a narrow id query (LIMIT/OFFSET)
    before its rows are loaded, so no query sorts or loads whole rows of every granted node.
    The rows are named tuples of `NODE_USER_FIELDS`. The SQL is by hand: the ORM cannot put
    the counts in CASE branches, and building the nested id query cost more than running it.
    """

    ordered = True  # Django's Paginator warns about unordered object lists

    def __init__(self, user: Any) -> None:
        self._user_pk = user.pk
        self._counts: tuple[int, int] | None = None  # (granted nodes, highest node pk)

    def count(self) -> int:
        """Granted nodes, counted on the grants alone. One group grants each node at most once
        (unique constraint), so only a user in several groups pays for COUNT(DISTINCT), which
        sorts every grant; only the chosen CASE branch runs. The highest node pk (one index
        lookup) bounds how many nodes there are, for `_page_ids`."""
        nodes, access, members = _tables()
        grants = (
            f"FROM {access} WHERE group_id IN"  # noqa: S608  # names from the models only
            f" (SELECT group_id FROM {members} WHERE user_id = %s)"
        )
        sql = (
            f"SELECT CASE WHEN (SELECT COUNT(*) FROM {members} WHERE user_id = %s) > 1"  # noqa: S608
            f" THEN (SELECT COUNT(DISTINCT node_id) {grants}) ELSE (SELECT COUNT(*) {grants}) END,"
            f" (SELECT MAX(id) FROM {nodes})"
        )
        ((visible, highest),) = rawsql.rows(sql, [self._user_pk] * 3)
        self._counts = (int(visible), int(highest or 0))
        return self._counts[0]

    def __len__(self) -> int:
        return self.count()

    def _page_ids(self, start: int, limit: int) -> RawSQL:
        """Ids of the page's nodes in `node_id` order, by the cheaper of two plans.

        Dense grants (the page ends within about `visible` entries of the `node_id` index, as
        estimated from `count()`): walk that index, keep the granted nodes and stop at the
        page's end. Otherwise (sparse grants, deep pages, or no count yet): one id per granted
        node (GROUP BY: a node granted to two of the user's groups joins twice), sorted, which
        costs a row lookup per granted node. Both give the same ids.
        """
        nodes, access, members = _tables()
        groups = f"(SELECT group_id FROM {members} WHERE user_id = %s)"  # noqa: S608
        if self._counts is not None and (start + limit) * self._counts[1] <= self._counts[0] ** 2:
            sql = (
                f"SELECT n.id FROM {nodes} n WHERE EXISTS (SELECT 1 FROM {access} a"  # noqa: S608
                f" WHERE a.node_id = n.id AND a.group_id IN {groups})"
                " ORDER BY n.node_id LIMIT %s OFFSET %s"
            )
        else:
            sql = (
                f"SELECT MIN(n.id) FROM {nodes} n JOIN {access} a ON a.node_id = n.id"  # noqa: S608
                f" WHERE a.group_id IN {groups} GROUP BY n.node_id"
                " ORDER BY n.node_id LIMIT %s OFFSET %s"
            )
        return RawSQL(sql, [self._user_pk, limit, start])  # noqa: S611  # values as parameters

    def __getitem__(self, key: slice) -> list[Any]:
        start = key.start or 0
        stop = self.count() if key.stop is None else key.stop
        if stop <= start:
            return []
        return list(
            Node.objects.filter(pk__in=self._page_ids(start, stop - start))
            .order_by("node_id")
            .values_list(*NODE_USER_FIELDS, named=True)
        )

    def __iter__(self) -> Iterator[Any]:
        return iter(self[0:None])


def node_page_source_for_user(*, user: Any) -> QuerySet[Node] | VisibleNodes:
    """What the node list paginates: admins every node (with grants and invites), others their
    groups' nodes, paged by id first (`VisibleNodes`)."""
    if _is_admin(user):
        return node_list_for_user(user=user, admin_details=True)
    if not (user and user.is_authenticated and user.is_active):
        return Node.objects.none()
    return VisibleNodes(user)


def node_get_for_user(*, user: Any, node_id: str) -> Node:
    """The node if `user` may see it; NotFound otherwise."""
    node = node_list_for_user(user=user).filter(node_id=node_id).first()
    if node is None:
        raise NotFound("No such node.")
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
    _, access, members = _tables()
    # By hand: once per heartbeat flush, and the ORM prepares each IN value in Python.
    sql = (
        "SELECT DISTINCT a.node_id, u.id"  # noqa: S608  # names from the models only
        f" FROM {access} a JOIN {members} m ON m.group_id = a.group_id"
        f" JOIN {rawsql.table(User)} u ON u.id = m.user_id"
        " WHERE u.is_active = %s AND a.node_id IN"
    )
    for node_pk, user_id in rawsql.rows_in(sql, pks, before=[True]):
        out[node_pk].add(user_id)
    return {pk: sorted(ids) for pk, ids in out.items()}


def task_list_for_user(*, user: Any) -> QuerySet[Task]:
    """Tasks on nodes the user may use."""
    nodes = node_list_for_user(user=user)
    base = Task.objects.select_related("node", "requested_by")
    if _is_admin(user):
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


def node_agent_info(*, node: Node) -> dict[str, str]:
    """The agent's version, Python and OS, as its last Hello said (empty before the first)."""
    return {"version": node.version, "python": node.agent_python, "os": node.agent_os}


def policy_check(
    *, node: Node, command: str, policy: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Judge `command` with the checker the hub and the node use, against the node's policy or
    a draft `policy` (the editor's "check a command" box). A draft that does not validate is a
    400 on `policy`, as saving it would be."""
    from mesh.agent.sandbox import Policy, check_command

    source = node.sandbox_policy if policy is None else policy
    try:
        parsed = Policy.from_dict(source or {})
    except ValueError as exc:
        raise ValidationFailed(fields={"policy": [str(exc)]}) from exc
    verdict = check_command(parsed, command)
    return {
        "allowed": bool(verdict.allowed),
        "sensitive": bool(verdict.sensitive),
        "reason": verdict.reason,
        "offending": verdict.offending or "",
        "commands": list(verdict.commands),
    }


# --- metrics (read at scrape time; aggregate only, no grants: the scraper is an operator) ------


def node_counts_by_status() -> dict[str, int]:
    """Active nodes by status; every status appears, zero included (for alert rules)."""
    from django.db.models import Count

    from mesh.models import NodeStatus

    counts = {status.value: 0 for status in NodeStatus}
    for status, count in (
        Node.objects.filter(is_active=True).order_by().values_list("status").annotate(n=Count("id"))
    ):
        counts[status] = count
    return counts


def task_counts_by_status_kind() -> dict[tuple[str, str], int]:
    """Tasks by (status, kind); active statuses appear for every kind, zero included."""
    from django.db.models import Count

    from mesh.models import OPEN_STATUSES, TaskKind

    counts = {(str(status), kind.value): 0 for status in OPEN_STATUSES for kind in TaskKind}
    for status, kind, count in (
        Task.objects.order_by().values_list("status", "kind").annotate(n=Count("id"))
    ):
        counts[(status, kind)] = count
    return counts
