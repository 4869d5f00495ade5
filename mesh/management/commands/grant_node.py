"""`manage.py grant_node NODE_ID GROUP`: let a group use a node (audited, source "command")."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.context import AuditContext
from accounts.selectors import group_find
from cortex.errors import CortexError
from mesh import selectors, services
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


class Command(BaseCommand):
    help = "Let members of GROUP (name or id) use NODE_ID."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node_id")
        parser.add_argument("group")

    def handle(self, *args: Any, **options: Any) -> None:
        node, group = lookup(options["node_id"], options["group"])
        try:
            services.node_grant(
                actor=None, node=node, group=group, audit_context=AuditContext.command("grant_node")
            )
        except CortexError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stdout.write(f"Group {group.name} may use node {node.node_id}.")
