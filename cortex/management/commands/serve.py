"""`manage.py serve`: the embedded all-in-one hub (HTTP/WS and gRPC in one process)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from cortex.embedded import run_embedded


class Command(BaseCommand):
    help = "Serve HTTP, WebSocket and the gRPC node server in one process (embedded default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--http", default="127.0.0.1:8000", help="HOST:PORT for HTTP/WS")
        parser.add_argument(
            "--grpc", default=None, help="HOST:PORT for nodes (CORTEX_GRPC_ADDRESS)"
        )
        parser.add_argument("--no-grpc", action="store_true", help="do not start the gRPC server")

    def handle(self, *args: Any, **options: Any) -> None:
        grpc_address = None if options["no_grpc"] else (options["grpc"] or settings.GRPC_ADDRESS)
        asyncio.run(
            run_embedded(
                http=options["http"],
                grpc_address=grpc_address,
                announce=lambda line: self.stdout.write(line),
            )
        )
