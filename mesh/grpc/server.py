"""The grpc.aio server for nodes: NodeMesh + standard health, used by `runmesh` and `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import grpc
from django.conf import settings
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mesh import events
from mesh.agent.pb import mesh_pb2_grpc
from mesh.grpc.auth import NodeCredentialInterceptor
from mesh.grpc.hub import StreamHub
from mesh.grpc.servicers import NodeMeshServicer

logger = logging.getLogger("cortex.mesh.grpc")

SERVICE_NAME = "cortex.mesh.v1.NodeMesh"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Ping idle nodes every 30 s; accept node pings no more often than every 10 s.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 3),
    ("grpc.so_reuseport", 0),
]


class MeshBindError(RuntimeError):
    """The gRPC address could not be bound (one line for the operator)."""


def _bind(server: grpc.aio.Server, address: str) -> int:
    cert, key = settings.GRPC_TLS_CERT, settings.GRPC_TLS_KEY
    try:
        if cert and key:
            credentials = grpc.ssl_server_credentials(
                [(Path(key).read_bytes(), Path(cert).read_bytes())]
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except (RuntimeError, OSError) as exc:
        raise MeshBindError(f"cannot listen for nodes on {address}: {exc}") from exc
    if not port:
        raise MeshBindError(f"cannot listen for nodes on {address}")
    return port


async def serve(address: str, *, stop_event: asyncio.Event, grace: float = 5.0) -> None:
    """Serve nodes on `address` until `stop_event` is set, then stop gracefully.

    On stop: health goes NOT_SERVING, every stream is told to Reconnect (elsewhere), and the
    server stops with `grace` seconds for calls in flight.
    """
    server = grpc.aio.server(interceptors=[NodeCredentialInterceptor()], options=SERVER_OPTIONS)
    hub = StreamHub()
    mesh_pb2_grpc.add_NodeMeshServicer_to_server(NodeMeshServicer(hub), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _bind(server, address)
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    logger.info("gRPC for nodes on %s", address)
    background = [
        asyncio.create_task(hub.flush_loop(), name="mesh-flush"),
        asyncio.create_task(hub.sweep_loop(), name="mesh-sweep"),
    ]
    try:
        await stop_event.wait()
    finally:
        for name in ("", SERVICE_NAME):
            with contextlib.suppress(Exception):
                await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        hub.reconnect_all("hub stopping")
        await hub.drain(timeout=min(grace, 2.0))
        await server.stop(grace)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        with contextlib.suppress(Exception):
            await hub.flush()
        with contextlib.suppress(Exception):  # the last live frames (a node's disconnect)
            await asyncio.wait_for(events.sent(), timeout=2.0)
        logger.info("gRPC server on %s stopped", address)
