"""`manage.py revoke_node NODE_ID GROUP`: stop a group from using a node (audited)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.context import AuditContext
from cortex.errors import CortexError
from mesh import services
from mesh.management.commands.grant_node import lookup


class Command(BaseCommand):
    help = "Stop members of GROUP (name or id) from using NODE_ID."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node_id")
        parser.add_argument("group")

    def handle(self, *args: Any, **options: Any) -> None:
        node, group = lookup(options["node_id"], options["group"])
        try:
            services.node_revoke(
                actor=None,
                node=node,
                group=group,
                audit_context=AuditContext.command("revoke_node"),
            )
        except CortexError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stdout.write(f"Group {group.name} may no longer use node {node.node_id}.")
