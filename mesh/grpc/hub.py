"""The process-wide side of the gRPC server: live streams (for Reconnect), write batching, sweeps.

Nothing here is the truth about nodes or tasks: the set of streams only lets a stopping
process say goodbye, and heartbeats wait here at most a second before they are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer
from django.conf import settings

from cortex import faults, metrics
from cortex.services import db_unit
from cortex.sweeps import sweeps_run
from mesh import events
from mesh.agent.pb import mesh_pb2
from mesh.services import aio

if TYPE_CHECKING:
    from mesh.grpc.connection import NodeConnection

logger = logging.getLogger("cortex.mesh.grpc")
_sweeps_run = db_unit(sweeps_run)

FLUSH_INTERVAL = 1.0


class StreamHub:
    """Streams of this process, their doorbells and their heartbeats.

    Doorbells arrive on one channel per process: each node's group is added to it while the
    node has a stream here, and a message names its node. A per-stream channel, queue and
    receive task would cost memory with every connected node.
    """

    def __init__(self) -> None:
        self.connections: set[NodeConnection] = set()
        self.by_node: dict[str, list[NodeConnection]] = {}
        self.beats: dict[str, tuple[str, dict[str, Any]]] = {}
        self.channel: str | None = None
        self.bell_loop: asyncio.Task[None] | None = None
        #: Doorbell groups not subscribed because the channel layer was down.
        self.unsubscribed: dict[str, str] = {}  # group -> node_id
        #: False while heartbeat flushes fail (database down): the sweeper waits for the
        #: next good flush, so a database outage does not mark beating nodes offline.
        self.flush_ok = True

    async def attach(self, connection: NodeConnection) -> None:
        """Register a stream; the first one of a node subscribes the node's doorbell group.

        With the channel layer down the stream is kept: the group is subscribed once the layer
        is back (`_resubscribe`, from the flush loop); meanwhile the flush's queued-work check
        delivers what a doorbell would have.
        """
        self.connections.add(connection)
        metrics.MESH_STREAMS.set(len(self.connections))
        peers = self.by_node.setdefault(connection.node_id, [])
        peers.append(connection)
        if len(peers) == 1:
            await self._subscribe(connection.group, connection.node_id)

    async def _subscribe(self, group: str, node_id: str) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            await layer.group_add(group, await self._channel(layer))
        except Exception as exc:
            if not faults.is_channel_layer_outage(exc) and not isinstance(exc, OSError):
                raise
            if not self.unsubscribed:
                logger.warning("channel layer unavailable; doorbells wait for it")
            self.unsubscribed[group] = node_id
        else:
            self.unsubscribed.pop(group, None)

    async def _resubscribe(self) -> None:
        """Subscribe the groups whose subscription failed during a channel-layer outage."""
        for group, node_id in list(self.unsubscribed.items()):
            if not self.by_node.get(node_id):
                self.unsubscribed.pop(group, None)
                continue
            await self._subscribe(group, node_id)
            if group in self.unsubscribed:
                return  # still down: try again at the next flush
        logger.info("channel layer back; doorbell groups subscribed")

    async def detach(self, connection: NodeConnection) -> None:
        """Forget a stream; the last one of a node unsubscribes the node's doorbell group."""
        self.connections.discard(connection)
        metrics.MESH_STREAMS.set(len(self.connections))
        peers = self.by_node.get(connection.node_id, [])
        if connection in peers:
            peers.remove(connection)
        if peers:
            return
        self.by_node.pop(connection.node_id, None)
        self.unsubscribed.pop(connection.group, None)
        layer = get_channel_layer()
        if layer is not None and self.channel is not None:
            await layer.group_discard(connection.group, self.channel)

    async def _channel(self, layer: Any) -> str:
        if self.channel is None:
            self.channel = await layer.new_channel()
            self.bell_loop = asyncio.create_task(self._doorbells(layer, self.channel))
        return self.channel

    async def _doorbells(self, layer: Any, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except Exception:  # a broken layer: the flush's queued-work check covers the gap
                logger.warning("doorbell receive failed", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            for connection in self.by_node.get(message.get("node_id", ""), ()):
                connection.ring(message)

    def beat(self, node_id: str, connection_id: str, stats: dict[str, Any]) -> None:
        self.beats[node_id] = (connection_id, stats)

    async def flush(self) -> None:
        """Write the beats of the last interval, then deliver to beating nodes with queued work.

        The heartbeat is the safety net for a lost doorbell: one query per flush finds the
        nodes that have queued tasks, instead of a delivery claim on every beat.
        """
        beats, self.beats = self.beats, {}
        if beats:
            started = time.perf_counter()
            try:
                await aio.heartbeat_flush(beats=beats)
            except Exception as exc:
                if faults.is_database_outage(exc):
                    # Kept for the next flush (newer beats win): an outage delays them, no more.
                    self.beats = {**beats, **self.beats}
                raise
            metrics.HEARTBEAT_FLUSH.observe(time.perf_counter() - started)
            waiting = await aio.nodes_with_queued_tasks(node_ids=list(beats))
            if waiting:
                for connection in list(self.connections):
                    if connection.node_id in waiting:
                        connection.deliver_soon()

    async def flush_loop(self) -> None:
        """Flush every FLUSH_INTERVAL; while the database is down, back off (up to 5 s) and
        log once, then catch up when it is back."""
        delay = FLUSH_INTERVAL
        while True:
            await asyncio.sleep(delay)
            if self.unsubscribed:
                with contextlib.suppress(Exception):
                    await self._resubscribe()
            try:
                await self.flush()
            except Exception as exc:
                metrics.HEARTBEAT_FLUSH_FAILURES.inc()
                if not faults.is_database_outage(exc):
                    logger.exception("heartbeat flush failed")  # those beats are dropped
                    continue
                if self.flush_ok:
                    logger.warning("heartbeat flush: database unavailable; retrying")
                self.flush_ok = False
                delay = min(5.0, delay * 2)
                continue
            if not self.flush_ok:
                logger.info("heartbeat flush: database back")
            self.flush_ok = True
            delay = FLUSH_INTERVAL

    async def sweep_once(self) -> dict[str, Any]:
        """The mesh's presence sweep, then every app's registered sweep (`cortex.sweeps`)."""
        result = await aio.presence_sweep()
        by_node: dict[str, list[str]] = {}
        for node_id, task_id in result["timed_out"]:
            by_node.setdefault(node_id, []).append(task_id)
        for node_id, task_ids in by_node.items():
            await events.asend(
                events.group_name(events.NODE_GROUP, node_id=node_id),
                {
                    "type": events.DOORBELL,
                    "reason": events.RING_CANCEL,
                    "node_id": node_id,
                    "task_ids": task_ids,
                },
            )
        result["sweeps"] = await _sweeps_run()
        return result

    async def sweep_loop(self) -> None:
        interval = max(0.5, min(float(settings.MESH_HEARTBEAT_INTERVAL) / 2, 10.0))
        while True:
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            if not self.flush_ok:
                continue  # beats of this process are not written yet: nobody is silent
            try:
                await self.sweep_once()
            except Exception as exc:
                if not faults.is_database_outage(exc):
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
