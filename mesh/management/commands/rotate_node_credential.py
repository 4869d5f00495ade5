"""`manage.py rotate_node_credential NODE_ID`: push a new credential to the node (audited)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.context import AuditContext
from cortex.errors import CortexError
from mesh import services
from mesh.selectors import node_find


class Command(BaseCommand):
    help = (
        "Rotate NODE_ID's credential: the hub sends a new one over the node's stream (now, or "
        "when it next connects); the old one works until the node confirms it saved the new one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node_id")

    def handle(self, *args: Any, **options: Any) -> None:
        node = node_find(node_id=options["node_id"])
        if node is None:
            raise CommandError(f"No node {options['node_id']!r}.")
        try:
            services.credential_rotate(
                actor=None, node=node, audit_context=AuditContext.command("rotate_node_credential")
            )
        except CortexError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stdout.write(f"Credential rotation requested for node {node.node_id}.")
