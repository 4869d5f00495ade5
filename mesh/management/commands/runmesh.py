"""`manage.py runmesh`: the gRPC process nodes connect to; any number may run at once."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cortex.metrics import MetricsBindError, start_metrics_server
from mesh.grpc.server import MeshBindError, serve

#: Seconds a thread may keep the GIL while another waits for it (Python's default: 0.005).
GIL_SWITCH_INTERVAL = 0.001
#: Checks that only a separate gRPC process needs (`serve` never runs them).
RUNMESH_TAG = "mesh_runmesh"


@checks.register(RUNMESH_TAG, deploy=True)
def check_cross_process_layer(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """The in-memory channel layer cannot ring a doorbell in another process."""
    if settings.REDIS_URL:
        return []
    return [
        checks.Warning(
            "REDIS_URL is unset: the in-memory channel layer cannot reach web processes.",
            hint="Set REDIS_URL for runmesh, or use `manage.py serve` for one process.",
            id="mesh.W001",
        )
    ]


class Command(BaseCommand):
    help = "Serve the gRPC node protocol (Join, Connect, health) for agent nodes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--address", default=None, help="HOST:PORT (CORTEX_GRPC_ADDRESS)")
        parser.add_argument(
            "--grace", type=float, default=10.0, help="seconds for calls in flight on stop"
        )
        parser.add_argument(
            "--metrics-address",
            default=None,
            help="HOST:PORT for Prometheus metrics (CORTEX_MESH_METRICS_ADDRESS; unset: none)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.check(tags=[RUNMESH_TAG], include_deployment_checks=True, fail_level=checks.WARNING)
        address = options["address"] or settings.GRPC_ADDRESS
        # The database thread (a heartbeat flush of thousands of nodes is milliseconds of
        # Python) keeps the GIL up to the switch interval at a time while the streams' acks
        # wait for it; 1 ms instead of Python's 5 ms bounds that wait.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        metrics_address = options["metrics_address"] or settings.MESH_METRICS_ADDRESS
        metrics_server = None
        try:
            if metrics_address:
                metrics_server = start_metrics_server(metrics_address)
                self.stdout.write(f"runmesh: metrics on http://{metrics_address}/metrics")
            asyncio.run(self._run(address, options["grace"]))
        except (MeshBindError, MetricsBindError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()

    async def _run(self, address: str, grace: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        self.stdout.write(f"runmesh: gRPC for nodes on {address}")
        await serve(address, stop_event=stop, grace=grace)
        self.stdout.write("runmesh: stopped")
