"""`manage.py provision_node NODE_ID --out DIR`: write a node's provisioning bundle into DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.context import AuditContext
from cortex.errors import CortexError
from mesh.selectors import node_find
from mesh.services.provisioning import provisioning_write, wheel_target


class Command(BaseCommand):
    help = (
        "Write NODE_ID's bundle (agent, agent_config.yaml with a fresh single-use invite, run.sh, "
        "bootstrap.py) into DIR. The new invite replaces any pending one (--no-invite: none, "
        "paste the token you hold). Copy DIR to the node and run `bash run.sh` there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node_id")
        parser.add_argument("--out", required=True, help="directory to write (created if missing)")
        parser.add_argument(
            "--with-wheels",
            action="store_true",
            help="add the agent's requirements as wheels (wheels/) for a node without a package "
            "index; run.sh then installs from them offline",
        )
        parser.add_argument(
            "--python-version", default="", help="the node's Python for --with-wheels, e.g. 3.10"
        )
        parser.add_argument(
            "--platform", default="", help="the node's wheel platform, e.g. manylinux2014_x86_64"
        )
        parser.add_argument(
            "--no-invite",
            action="store_true",
            help="write no invite token (keeps the pending invite working)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        node = node_find(node_id=options["node_id"])
        if node is None:
            raise CommandError(f"No node {options['node_id']!r}.")
        if not node.is_active:
            raise CommandError(f"Node {node.node_id!r} is deactivated.")
        out = Path(options["out"]).resolve()
        if out.exists() and not out.is_dir():
            raise CommandError(f"{out} exists and is not a directory.")
        try:
            wheels = None
            if options["with_wheels"]:
                wheels = wheel_target(
                    python_version=options["python_version"], platform=options["platform"]
                )
            elif options["python_version"] or options["platform"]:
                raise CommandError("--python-version and --platform go with --with-wheels.")
            written = provisioning_write(
                actor=None,
                node=node,
                directory=out,
                audit_context=AuditContext.command("provision_node"),
                invite="none" if options["no_invite"] else "new",
                wheels=wheels,
            )
        except CortexError as exc:
            fields = f" {exc.fields}" if exc.fields else ""
            raise CommandError(f"{exc.message} ({exc.code}){fields}") from exc
        invite_line = (
            "No invite in agent_config.yaml: paste the node's pending invite token there.\n"
            if options["no_invite"]
            else "Issued a new invite for it; any earlier unused invite no longer works.\n"
        )
        self.stdout.write(
            f"Wrote the bundle of node {node.node_id} to {out} ({len(written)} files).\n"
            + invite_line
            + f"On the node: bash {out / 'run.sh'}   (or: python3 {out / 'bootstrap.py'})"
        )
