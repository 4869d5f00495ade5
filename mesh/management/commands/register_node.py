"""`manage.py register_node NODE_ID [--name N] [--group G]`: register a node, print its invite."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.context import AuditContext
from accounts.selectors import group_find
from cortex.errors import CortexError
from mesh import services


class Command(BaseCommand):
    help = (
        "Register a node and print its single-use invite token (shown once) on stdout. "
        "Then write its bundle with `provision_node NODE_ID --out DIR`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node_id")
        parser.add_argument("--name", default="", help="display name (default: the node id)")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--group", action="append", default=[], help="group name allowed to use it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        node_id: str = options["node_id"]
        groups = []
        for name in options["group"]:
            group = group_find(ref=name)
            if group is None:
                raise CommandError(f"No group named {name!r}.")
            groups.append(group)
        try:
            node, invite = services.node_create(
                actor=None,  # an operator at the shell
                node_id=node_id,
                display_name=options["name"] or node_id,
                description=options["description"],
                groups=groups,
                audit_context=AuditContext.command("register_node"),
            )
        except CortexError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        except ValidationError as exc:
            raise CommandError(f"Invalid node: {'; '.join(exc.messages)}") from exc
        self.stderr.write(f"Registered node {node.node_id}; its invite token (shown once):")
        self.stdout.write(invite)
