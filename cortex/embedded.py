"""The embedded all-in-one process: ASGI (HTTP + WebSocket) and gRPC in one event loop.

One loop matters: the in-memory channel layer only connects consumers and the gRPC servicer
when both live in the same process and loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Generator

import uvicorn
from django.conf import settings

logger = logging.getLogger("cortex.serve")


class _EmbeddedUvicorn(uvicorn.Server):
    """Uvicorn without its own signal handling: `run_embedded` owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def split_address(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host:
        return address, default_port
    return host.strip("[]"), int(port)


async def run_embedded(
    *, http: str, grpc_address: str | None, announce: Callable[[str], None]
) -> None:
    """Serve until SIGINT or SIGTERM, then stop both listeners gracefully."""
    host, port = split_address(http, 8000)
    config = uvicorn.Config(
        "cortex.asgi:application",
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws="websockets-sansio",
        proxy_headers=False,
    )
    web = _EmbeddedUvicorn(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def _on_signal() -> None:
        web.should_exit = True
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal)

    from cortex.background import background_start, background_stop

    background_start()  # the agent scheduler, before the first connection

    async def _hand_over() -> None:
        await stop.wait()
        await background_stop()  # hand the agent runs this process drives over at once

    handover = asyncio.create_task(_hand_over(), name="background-stop")
    tasks = [asyncio.create_task(web.serve(), name="http")]
    mesh_line = "gRPC disabled"
    if grpc_address:
        from mesh.grpc.server import serve as serve_mesh

        tasks.append(asyncio.create_task(serve_mesh(grpc_address, stop_event=stop), name="grpc"))
        mesh_line = f"gRPC for nodes on {grpc_address}"

    while not web.started and not tasks[0].done():
        await asyncio.sleep(0.05)
    if web.started:
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        layer = "Redis channel layer" if settings.REDIS_URL else "in-memory channel layer"
        announce(
            f"Cortex Hub: HTTP + WebSocket on http://{host}:{port}/ and {mesh_line} "
            f"({database}, {layer}). Ctrl-C stops."
        )
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    # Whichever listener ended first (a signal, or a bind failure), stop the other one too.
    _on_signal()
    await handover
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
