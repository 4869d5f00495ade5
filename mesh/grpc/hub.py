"""The process-wide side of the gRPC server: live streams (for Reconnect), write batching, sweeps.

Nothing here is the truth about nodes or tasks: the set of streams only lets a stopping
process say goodbye, and heartbeats wait here at most a second before they are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING, Any

from django.conf import settings

from mesh import events
from mesh.agent.pb import mesh_pb2
from mesh.services import aio

if TYPE_CHECKING:
    from mesh.grpc.connection import NodeConnection

logger = logging.getLogger("cortex.mesh.grpc")

FLUSH_INTERVAL = 1.0


class StreamHub:
    def __init__(self) -> None:
        self.connections: set[NodeConnection] = set()
        self.beats: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(self, connection: NodeConnection) -> None:
        self.connections.add(connection)

    def remove(self, connection: NodeConnection) -> None:
        self.connections.discard(connection)

    def beat(self, node_id: str, connection_id: str, stats: dict[str, Any]) -> None:
        self.beats[node_id] = (connection_id, stats)

    async def flush(self) -> None:
        """Write the beats of the last interval, then deliver to beating nodes with queued work.

        The heartbeat is the safety net for a lost doorbell: one query per flush finds the
        nodes that have queued tasks, instead of a delivery claim on every beat.
        """
        beats, self.beats = self.beats, {}
        if beats:
            await aio.heartbeat_flush(beats=beats)
            waiting = await aio.nodes_with_queued_tasks(node_ids=list(beats))
            if waiting:
                for connection in list(self.connections):
                    if connection.node_id in waiting:
                        connection.deliver_soon()

    async def flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.flush()
            except Exception:
                logger.exception("heartbeat flush failed")

    async def sweep_once(self) -> dict[str, Any]:
        result = await aio.presence_sweep()
        by_node: dict[str, list[str]] = {}
        for node_id, task_id in result["timed_out"]:
            by_node.setdefault(node_id, []).append(task_id)
        for node_id, task_ids in by_node.items():
            await events.asend(
                events.group_name(events.NODE_GROUP, node_id=node_id),
                {"type": events.DOORBELL, "reason": events.RING_CANCEL, "task_ids": task_ids},
            )
        return result

    async def sweep_loop(self) -> None:
        interval = max(0.5, min(float(settings.MESH_HEARTBEAT_INTERVAL) / 2, 10.0))
        while True:
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            try:
                await self.sweep_once()
            except Exception:
                logger.exception("presence sweep failed")

    def reconnect_all(self, reason: str) -> None:
        """Tell every node on this process to reconnect (to another runmesh) after a jitter."""
        for connection in list(self.connections):
            connection.send(
                mesh_pb2.HubMessage(
                    reconnect=mesh_pb2.Reconnect(reason=reason, after_s=random.uniform(0.5, 3.0))
                )
            )
            connection.mark_stopping()

    async def drain(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and any(not c.outbox.empty() for c in self.connections):
            await asyncio.sleep(0.05)
        with contextlib.suppress(Exception):
            await self.flush()
