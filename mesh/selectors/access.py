"""The node rule: "may this user use this node (for this skill)?", and who may see a node.

`node_usable_for` is the one owner of the rule; `nodes_usable_by` is the same rule as a
queryset, and `node_user_ids` / `node_user_ids_many` the same rule seen from the node. The
hand-written SQL forms of it (the user's node list page, a heartbeat batch's viewers) live in
`mesh.store`; mesh/tests/test_node_rule_parity.py holds every form to the same answers.

The rule: an admin (`accounts.selectors.user_is_admin`) may use every node; any other active,
signed-in user a node granted to one of their groups. With a `skill`, the node must also take
it (`mesh.selectors.nodes.node_skill_refusal`: active, switched on, reported by the node).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from accounts.selectors import admin_q, admin_user_ids, user_is_admin
from cortex.errors import NotFound
from mesh import store
from mesh.agent.skill_names import SKILLS
from mesh.models import Node, NodeGroupAccess, NodeInvite
from mesh.selectors.nodes import node_skill_refusal


def _signed_in(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
    )


def _skill_q(skill: str) -> Q:
    """`node_skill_refusal(node, skill) is None` as a filter on nodes."""
    if skill not in SKILLS:  # an unknown skill is no skill any node takes
        return Q(pk__in=[])
    reported = Q(capabilities={}) | Q(**{f"capabilities__{skill}": True})
    return Q(is_active=True, **{f"skill_config__{skill}": True}) & reported


def nodes_usable_by(*, user: Any, skill: str | None = None) -> QuerySet[Node]:
    """The nodes `user` may use (for `skill` when given), in `node_id` order: the ORM form of
    `node_usable_for`."""
    if user_is_admin(user):
        nodes = Node.objects.all()
    elif _signed_in(user):
        visible = NodeGroupAccess.objects.filter(group__user=user).values("node_id")
        nodes = Node.objects.filter(pk__in=visible)
    else:
        return Node.objects.none()
    if skill is not None:
        nodes = nodes.filter(_skill_q(skill))
    return nodes.order_by("node_id")


def node_usable_for(*, user: Any, node: Node, skill: str | None = None) -> bool:
    """Whether `user` may use `node` (for `skill` when given): the one owner of the rule."""
    if skill is not None and node_skill_refusal(node=node, skill=skill) is not None:
        return False
    if user_is_admin(user):
        return True
    if not _signed_in(user):
        return False
    return NodeGroupAccess.objects.filter(node=node, group__user=user).exists()


def node_list_for_user(*, user: Any, admin_details: bool = False) -> QuerySet[Node]:
    """The nodes `user` may see (= use): admins every node, others their groups' nodes.
    `admin_details` prefetches what the admin view of a node shows (grants and invites): two
    more queries, only where shown."""
    nodes = nodes_usable_by(user=user)
    if not (admin_details and user_is_admin(user)):
        return nodes
    return nodes.prefetch_related(
        Prefetch(
            "group_access",
            queryset=NodeGroupAccess.objects.select_related("group").order_by("group__name"),
        ),
        Prefetch("invites", queryset=NodeInvite.objects.order_by("-created_at", "-id")),
    )


def node_get_for_user(*, user: Any, node_id: str) -> Node:
    """The node if `user` may see it; NotFound otherwise."""
    node = node_list_for_user(user=user).filter(node_id=node_id).first()
    if node is None:
        raise NotFound("No such node.")
    return node


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


class VisibleNodes:
    """A user's granted nodes as Django's Paginator reads them: `count()`, then one slice.

    The count reads only the grants, and the page is chosen by a narrow id query (LIMIT/OFFSET)
    before its rows are loaded, so no query sorts or loads whole rows of every granted node.
    The rows are named tuples of `NODE_USER_FIELDS`. The SQL is by hand (`mesh.store`): the
    ORM cannot put the counts in CASE branches, and building the nested id query cost more
    than running it.
    """

    ordered = True  # Django's Paginator warns about unordered object lists

    def __init__(self, user: Any) -> None:
        self._user_pk = user.pk
        self._counts: tuple[int, int] | None = None  # (granted nodes, highest node pk)

    def count(self) -> int:
        """Granted nodes (`store.visible_node_counts`)."""
        self._counts = store.visible_node_counts(user_pk=self._user_pk)
        return self._counts[0]

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key: slice) -> list[Any]:
        start = key.start or 0
        stop = self.count() if key.stop is None else key.stop
        if stop <= start:
            return []
        limit = stop - start
        # Dense grants: the page ends within about `visible` entries of the node_id index.
        dense = self._counts is not None and (start + limit) * self._counts[1] <= (
            self._counts[0] ** 2
        )
        ids = store.visible_node_page_ids(
            user_pk=self._user_pk, start=start, limit=limit, dense=dense
        )
        return list(
            Node.objects.filter(pk__in=ids)
            .order_by("node_id")
            .values_list(*NODE_USER_FIELDS, named=True)
        )

    def __iter__(self) -> Iterator[Any]:
        return iter(self[0:None])


def node_page_source_for_user(*, user: Any) -> QuerySet[Node] | VisibleNodes:
    """What the node list paginates: admins every node (with grants and invites), others their
    groups' nodes, paged by id first (`VisibleNodes`)."""
    if user_is_admin(user):
        return node_list_for_user(user=user, admin_details=True)
    if not _signed_in(user):
        return Node.objects.none()
    return VisibleNodes(user)


def node_user_ids(*, node: Node) -> list[int]:
    """Ids of the users who may see `node` (for per-user live frames)."""
    from accounts.models import User

    return list(
        User.objects.filter(admin_q() | Q(groups__node_access__node=node, is_active=True))
        .distinct()
        .values_list("id", flat=True)
    )


def node_user_ids_many(*, node_pks: list[int]) -> dict[int, list[int]]:
    """`node_user_ids` of many nodes in two queries (node pk -> user ids), for batched frames."""
    admins = admin_user_ids()
    out: dict[int, set[int]] = {pk: set(admins) for pk in node_pks}
    for node_pk, user_id in store.node_granted_viewers(node_pks=list(out)):
        out[node_pk].add(user_id)
    return {pk: sorted(ids) for pk, ids in out.items()}
