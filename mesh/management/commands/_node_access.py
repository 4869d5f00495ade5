"""The one body of `grant_node` and `revoke_node`: find the node and group, call the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.context import AuditContext
from accounts.selectors import group_find
from cortex.errors import CortexError
from mesh import selectors
from mesh.models import Node


def lookup(node_id: str, group_ref: str) -> tuple[Node, Group]:
    """The node by id and the group by name (or numeric id); CommandError if missing."""
    node = selectors.node_find(node_id=node_id)
    if node is None:
        raise CommandError(f"No node {node_id!r}.")
    group = group_find(ref=group_ref)
    if group is None:
        raise CommandError(f"No group {group_ref!r}.")
    return node, group


class NodeAccessCommand(BaseCommand):
    """`manage.py <command> NODE_ID GROUP`: `change` (a mesh service) audited as "command"."""

    change: ClassVar[Callable[..., Any]]
    #: What is printed on success, formatted with `group` and `node` (names).
    done: ClassVar[str]
    #: The command's name, as its audit rows say which command acted.
    command_name: ClassVar[str]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node_id")
        parser.add_argument("group")

    def handle(self, *args: Any, **options: Any) -> None:
        node, group = lookup(options["node_id"], options["group"])
        try:
            type(self).change(
                actor=None,
                node=node,
                group=group,
                audit_context=AuditContext.command(self.command_name),
            )
        except CortexError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stdout.write(self.done.format(group=group.name, node=node.node_id))
