"""One node rule, every form: `node_usable_for` (the owner), `nodes_usable_by` (ORM queryset),
`node_user_ids` (ORM, seen from the node) and the SQL forms in `mesh.store` (the user's node
list page, a heartbeat batch's viewers) give the same answers over a generated matrix of users
x groups x grants x node states x skills. Runs on SQLite, and again on PostgreSQL."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group

from accounts.models import User
from accounts.selectors import user_is_admin
from mesh import selectors, services, store
from mesh.models import Node, NodeGroupAccess
from mesh.tests.postgres_rerun import in_child, rerun_on_postgresql

pytestmark = pytest.mark.django_db

SKILL_CHOICES = (None, "shell", "files", "browser", "gpu")

#: Node states: (is_active, skill switches, reported capabilities).
NODE_STATES = [
    (True, {"shell": True, "files": True, "browser": False}, {}),
    (True, {"shell": True, "files": True, "browser": True}, {"shell": True, "files": True}),
    (True, {"shell": True, "files": False, "browser": True}, {"shell": True, "browser": True}),
    (True, {"shell": False, "files": True, "browser": True}, {"shell": True, "files": False}),
    (False, {"shell": True, "files": True, "browser": True}, {"shell": True, "files": True}),
    (True, {"shell": True, "files": True, "browser": True}, {"shell": "yes", "files": 1}),
    (True, {"shell": True, "files": True, "browser": False}, {"browser": True}),
]


def _world(staff: User) -> tuple[list[Any], list[Node]]:
    """Users of every kind, three groups, nodes in every state with varied grants."""
    groups = [Group.objects.create(name=f"g{i}") for i in range(3)]
    users: list[Any] = [AnonymousUser(), staff]
    kinds = [
        {"is_staff": True, "is_active": False},  # a deactivated admin: no admin
        {"is_superuser": True},  # superuser without is_staff: no admin by the house rule
        {},
        {},
        {},
        {"is_active": False},
        {},
    ]
    memberships = [[0], [0], [], [0], [1], [0, 1], [0, 1, 2]]
    for i, (extra, member_of) in enumerate(zip(kinds, memberships, strict=True)):
        user = User.objects.create_user(email=f"m{i}@example.com", password="x-pass-word", **extra)
        user.groups.add(*[groups[g] for g in member_of])
        users.append(user)
    nodes: list[Node] = []
    grant_patterns = [(), (0,), (1,), (0, 1), (2,), (0, 1, 2)]
    combos = itertools.product(range(len(NODE_STATES)), range(len(grant_patterns)))
    for n, (state, pattern) in enumerate(combos):
        # Node ids whose order differs from their pks, so the page order is tested.
        node, _ = services.node_create(
            actor=staff, node_id=f"n-{(n * 7) % 97:02d}-{n}", display_name=f"N{n}"
        )
        is_active, switches, reported = NODE_STATES[state]
        Node.objects.filter(pk=node.pk).update(
            is_active=is_active,
            skill_config={**switches, "max_concurrent_tasks": 2},
            capabilities=reported,
        )
        for g in grant_patterns[pattern]:
            NodeGroupAccess.objects.create(node=node, group=groups[g])
        nodes.append(Node.objects.get(pk=node.pk))
    return users, nodes


def test_every_form_of_the_node_rule_gives_the_same_answers(staff_user) -> None:  # type: ignore[no-untyped-def]
    users, nodes = _world(staff_user)
    for user, skill in itertools.product(users, SKILL_CHOICES):
        listed = set(selectors.nodes_usable_by(user=user, skill=skill).values_list("pk", flat=True))
        for node in nodes:
            usable = selectors.node_usable_for(user=user, node=node, skill=skill)
            assert usable == (node.pk in listed), (user, node.node_id, skill)
            if skill is not None:  # with a skill: the node rule and the skill check, nothing else
                alone = selectors.node_skill_refusal(node=node, skill=skill) is None
                granted = selectors.node_usable_for(user=user, node=node)
                assert usable == (alone and granted), (user, node.node_id, skill)

    # Seen from the nodes: the ORM form and the heartbeat's SQL form.
    by_node = selectors.node_user_ids_many(node_pks=[n.pk for n in nodes])
    real = [u for u in users if u.pk is not None]
    for node in nodes:
        expected = sorted(u.pk for u in real if selectors.node_usable_for(user=u, node=node))
        assert sorted(selectors.node_user_ids(node=node)) == expected, node.node_id
        assert by_node[node.pk] == expected, node.node_id

    # The user's node list: the SQL count and both page plans against the ORM.
    for user in real:
        ordered = list(selectors.nodes_usable_by(user=user).values_list("pk", flat=True))
        if user_is_admin(user) or not user.is_active:
            continue  # admins page the ORM queryset; inactive users get none at all
        visible, highest = store.visible_node_counts(user_pk=user.pk)
        assert (visible, highest) == (len(ordered), max(n.pk for n in nodes)), user
        for start, limit, dense in itertools.product((0, 1, 5), (1, 4, 100), (True, False)):
            ids = store.visible_node_page_ids(
                user_pk=user.pk, start=start, limit=limit, dense=dense
            )
            page = list(Node.objects.filter(pk__in=ids).order_by("node_id").values_list("pk"))
            assert [pk for (pk,) in page] == ordered[start : start + limit], (user, start, dense)
        paged = selectors.VisibleNodes(user)
        assert paged.count() == len(ordered)
        assert [row.node_id for row in paged[0:None]] == list(
            selectors.nodes_usable_by(user=user).values_list("node_id", flat=True)
        )


@pytest.mark.skipif(not in_child(), reason="only in the PostgreSQL run")
def test_the_rerun_is_on_postgresql() -> None:
    from django.db import connection

    assert connection.vendor == "postgresql"


@pytest.mark.postgres
@pytest.mark.skipif(in_child(), reason="this is the PostgreSQL run")
def test_the_node_rule_parity_holds_on_postgresql(postgres_url: str) -> None:
    rerun_on_postgresql(postgres_url, "mesh/tests/test_node_rule_parity.py")
