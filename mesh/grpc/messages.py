"""Per-stream helpers: protobuf <-> plain data, the output limiter and the outbox."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from cortex import faults
from cortex.errors import ValidationFailed
from mesh.agent.pb import mesh_pb2
from mesh.agent.skill_names import SKILLS
from mesh.services.presence import HeldTask, WelcomeData
from mesh.services.stats import stats_clean

T = TypeVar("T")

#: What a node may send: task ids are the hub's own (UUIDs); lists and maps have sane sizes.
_TASK_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
MAX_HELD_TASKS = 1024
MAX_CAPABILITIES = 64
MAX_NAME = 64


def task_id_of(value: str) -> str:
    """A task id from the node, refused (INVALID_ARGUMENT) unless it has a UUID's shape."""
    if _TASK_ID.fullmatch(value) is None:
        raise ValidationFailed("A task id must be a UUID.", code="invalid_task_id")
    return value


async def retry_db(conn: Any, what: str, unit: Callable[..., Awaitable[T]], **kwargs: Any) -> T:
    """An idempotent unit of a stream's database work that outlives a database outage: retried
    with back-off while the database is down (until the stream closes), so the stream stays."""
    return await faults.retry_while_down(
        lambda: unit(**kwargs), what=f"{what} for node {conn.node_id}", give_up=conn.closed.is_set
    )


async def credential_ack(conn: Any, ack: mesh_pb2.CredentialAck) -> None:
    """The node confirms it stored its rotated credential; an oversized fingerprint is refused
    like any message the stream does not expect."""
    from mesh.grpc.auth import audit_context_of
    from mesh.services import aio

    if len(ack.fingerprint) > MAX_NAME:
        raise ValidationFailed("Unexpected message on the stream.", code="unexpected_message")
    await retry_db(
        conn,
        "credential_confirm",
        aio.credential_confirm,
        node_id=conn.node_id,
        fingerprint=ack.fingerprint,
        audit_context=audit_context_of(conn.context),
    )


def held_of(hello: mesh_pb2.Hello) -> list[HeldTask]:
    if len(hello.held_tasks) > MAX_HELD_TASKS:
        raise ValidationFailed("Too many held tasks.", code="too_many_held_tasks")
    return [
        HeldTask(task_id=task_id_of(h.task_id), last_seq=h.last_seq, finished=h.finished)
        for h in hello.held_tasks
    ]


def capabilities_of(hello: mesh_pb2.Hello) -> dict[str, bool]:
    found = dict(hello.capabilities)
    if len(found) > MAX_CAPABILITIES or any(len(name) > MAX_NAME for name in found):
        raise ValidationFailed("Too many or too long capabilities.", code="invalid_capabilities")
    return found


class RateLimiter:
    """Token bucket on output bytes per node: a fast node is slowed down, never cut off."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    async def consume(self, amount: int) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= amount
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


def policy_pb(policy: dict[str, Any]) -> mesh_pb2.SandboxPolicy:
    mode = (
        mesh_pb2.SandboxPolicy.STRICT
        if policy.get("mode") == "strict"
        else mesh_pb2.SandboxPolicy.PERMISSIVE
    )
    return mesh_pb2.SandboxPolicy(
        mode=mode,
        allowed_commands=list(policy.get("allowed_commands", [])),
        denied_commands=list(policy.get("denied_commands", [])),
        sensitive_commands=list(policy.get("sensitive_commands", [])),
        browser_policy_json=json.dumps(policy["browser"]) if policy.get("browser") else "",
        allow_terminals=terminals_allowed(policy),
    )


def terminals_allowed(policy: dict[str, Any]) -> bool:
    """The effective terminal switch of a stored policy (unreadable: refused)."""
    from mesh.agent.sandbox import Policy

    try:
        return Policy.from_dict(policy).terminals_allowed
    except ValueError:
        return False


def skills_pb(skills: dict[str, Any]) -> mesh_pb2.SkillConfig:
    switches = {name: bool(skills.get(name)) for name in SKILLS}
    return mesh_pb2.SkillConfig(
        **switches, max_concurrent_tasks=int(skills.get("max_concurrent_tasks", 1))
    )


def stats_dict(stats: mesh_pb2.NodeStats) -> dict[str, Any]:
    """A Heartbeat's stats as plain data, sanitised at the edge (NaN, infinities, absurd
    sizes never reach the batched flush, where one bad row would fail every node's beat)."""
    return stats_clean(
        {
            "cpu_percent": stats.cpu_percent,
            "cpu_per_core": list(stats.cpu_per_core),
            "cpu_count": stats.cpu_count,
            "cpu_freq_mhz": stats.cpu_freq_mhz,
            "memory_used": stats.memory_used,
            "memory_total": stats.memory_total,
            "memory_available": stats.memory_available,
            "memory_percent": stats.memory_percent,
            "load_avg": list(stats.load_avg),
            "active_tasks": stats.active_tasks,
        }
    )


class Outbox(Generic[T]):
    """A FIFO with one consumer (the stream's writer): a deque and at most one waiting future.

    One per node stream, thousands per process: `asyncio.Queue` costs about 3 KB each and
    its features (bounds, many getters, join) are not used here.
    """

    __slots__ = ("_drain", "_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] | None = None  # only while something waits (a deque is 0.6 KB)
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None  # see drained()

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T:
        while not self._items:
            drain, self._drain = self._drain, None
            if drain is not None and not drain.done():
                drain.set_result(None)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items

    def drained(self) -> asyncio.Future[None]:
        """Done once the consumer asks for more and nothing is left: everything put so far
        has been handled (the writer is sequential). File pushes wait on it (back-pressure)."""
        if not self._items and self._waiter is not None:  # the consumer is idle already
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_future()
        return self._drain


class Flag:
    """`asyncio.Event`'s set / is_set / wait for one stream, without its waiter deque (an
    Event is ~0.9 KB; thousands of streams each hold one)."""

    __slots__ = ("_is_set", "_waiters")

    def __init__(self) -> None:
        self._is_set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._is_set

    def set(self) -> None:
        if self._is_set:
            return
        self._is_set = True
        waiters, self._waiters = self._waiters or [], None
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        if self._is_set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


def welcome_pb(data: WelcomeData) -> mesh_pb2.HubMessage:
    """The Welcome that answers a node's Hello."""
    return mesh_pb2.HubMessage(
        welcome=mesh_pb2.Welcome(
            policy=policy_pb(data.sandbox_policy),
            skills=skills_pb(data.skill_config),
            heartbeat_interval_s=data.heartbeat_interval,
            acked_seq=data.acked_seq,
            abandon_task_ids=data.abandon_task_ids,
        )
    )
