"""Node presence: hello on connect, heartbeats, disconnects, and the sweeper of every runmesh."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from cortex.errors import NotFound
from mesh import events, selectors, store
from mesh.models import ACTIVE_STATUSES, Node, NodeStatus, Task, max_concurrent_tasks
from mesh.services.journal import (
    tasks_enforce_deadlines,
    tasks_expire_undelivered,
    tasks_mark_lost,
)
from mesh.services.stats import stats_samples_record_many

logger = logging.getLogger("cortex.mesh")


@dataclass
class HeldTask:
    task_id: str
    last_seq: int = 0
    finished: bool = False


@dataclass
class WelcomeData:
    """What the hub answers a node's Hello with."""

    node_id: str
    sandbox_policy: dict[str, Any]
    skill_config: dict[str, Any]
    heartbeat_interval: float
    acked_seq: dict[str, int] = field(default_factory=dict)
    abandon_task_ids: list[str] = field(default_factory=list)


def _status_frame(node: Node) -> None:
    payload: dict[str, Any] = {
        "node_id": node.node_id,
        "status": node.status,
        "offline_reason": node.offline_reason,
        "last_seen_at": node.last_seen_at.isoformat() if node.last_seen_at else None,
    }
    events.console_frame(node.node_id, events.NODE_STATUS, **payload)
    for user_id in selectors.node_user_ids(node=node):
        events.send_on_commit(
            events.group_name(events.USER_NODES_GROUP, user_id=user_id),
            {"type": events.NODE_STATUS, "seq": events.frame_seq(), **payload},
        )


def node_hello(
    *,
    node_id: str,
    connection_id: str,
    version: str = "",
    platform: str = "",
    hostname: str = "",
    python_version: str = "",
    os_name: str = "",
    capabilities: dict[str, bool] | None = None,
    held: list[HeldTask] | None = None,
) -> WelcomeData:
    """Take over the node's stream: online, resume held tasks, end the ones the node forgot."""
    held = held or []
    held_ids = {h.task_id for h in held}
    now = timezone.now()
    with transaction.atomic():
        node = Node.objects.select_for_update().filter(node_id=node_id, is_active=True).first()
        if node is None:
            raise NotFound("No such node.")
        previous = node.connection_id
        node.version = version[:64]
        node.platform = platform[:128]
        node.hostname = hostname[:255]
        node.agent_python = python_version[:64]
        node.agent_os = os_name[:128]
        node.capabilities = {str(k): bool(v) for k, v in (capabilities or {}).items()}
        node.status = NodeStatus.ONLINE
        node.offline_reason = ""
        node.last_seen_at = now
        node.connection_id = connection_id
        node.disconnected_at = None
        node.save(
            update_fields=[
                "version",
                "platform",
                "hostname",
                "agent_python",
                "agent_os",
                "capabilities",
                "status",
                "offline_reason",
                "last_seen_at",
                "connection_id",
                "disconnected_at",
                "updated_at",
            ]
        )
        active = dict(
            Task.objects.filter(node=node, status__in=ACTIVE_STATUSES).values_list("pk", "last_seq")
        )
        active_ids = {str(pk): seq for pk, seq in active.items()}
        forgotten = [pk for pk in active if str(pk) not in held_ids]
        acked = {tid: seq for tid, seq in active_ids.items() if tid in held_ids}
        abandon = [h.task_id for h in held if h.task_id not in active_ids]
        _status_frame(node)
        if previous and previous != connection_id:
            events.ring_node(node_id, events.RING_KICK)
    if forgotten:
        tasks_mark_lost(node_id=node_id, task_ids=forgotten, reason="node_lost_task")
    return WelcomeData(
        node_id=node_id,
        sandbox_policy=dict(node.sandbox_policy or {}),
        skill_config=dict(node.skill_config or {}),
        heartbeat_interval=float(settings.MESH_HEARTBEAT_INTERVAL),
        acked_seq=acked,
        abandon_task_ids=abandon,
    )


def node_policy(*, node_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(sandbox_policy, skill_config) of an active node, for a PolicyUpdate."""
    node = Node.objects.filter(node_id=node_id, is_active=True).first()
    if node is None:
        return None
    return dict(node.sandbox_policy or {}), dict(node.skill_config or {})


def node_holds_stream(*, node_id: str, connection_id: str) -> bool:
    """Whether this connection still holds the node's stream (an empty id holds nothing)."""
    if not connection_id:
        return False
    return Node.objects.filter(
        node_id=node_id, connection_id=connection_id, is_active=True
    ).exists()


def node_disconnected(*, node_id: str, connection_id: str, reason: str = "disconnected") -> bool:
    """The stream ended: offline now; running tasks wait out the reconnect grace period."""
    now = timezone.now()
    with transaction.atomic():
        changed = Node.objects.filter(node_id=node_id, connection_id=connection_id).update(
            status=NodeStatus.OFFLINE,
            offline_reason=reason[:64],
            connection_id="",
            disconnected_at=now,
            updated_at=now,
        )
        if changed:
            node = Node.objects.get(node_id=node_id)
            _status_frame(node)
    return bool(changed)


@dataclass(slots=True)
class _Beat:
    """A beating node as the flush needs it (tuples from the DB, not model instances)."""

    pk: int
    node_id: str
    status: str
    stats: dict[str, Any]


def heartbeat_flush(*, beats: dict[str, tuple[str, dict[str, Any]]]) -> int:
    """Write the latest stats of each node (node_id -> (connection_id, stats)) in one batch.

    One transaction with a handful of statements whatever the batch size: the beating nodes
    are locked and read (as tuples: model instances cost more than the queries), and the ones
    whose stream is still current are written by one `executemany` UPDATE. Live frames go out
    after commit in one pipelined hop: one `node.stats` per node console and one `nodes.stats`
    per viewing user per flush.
    """
    now = timezone.now()
    ids = list(beats)
    current: list[_Beat] = []
    changed_status: list[int] = []
    caps: dict[Any, int] = {}  # skill configs repeat: each distinct one is decoded once
    with transaction.atomic():
        # By hand: the ORM prepares each value of a 1,000-value IN list in Python.
        for pk, node_id, connection_id, old_status, skill_config in store.nodes_beating_lock(
            node_ids=ids
        ):
            # A stream that ended or moved since the beat was received is not revived.
            if not connection_id or connection_id != beats[node_id][0]:
                continue
            stats = beats[node_id][1]
            cap = caps.get(skill_config)
            if cap is None:
                decoded = store.skill_config_decode(skill_config)
                cap = caps[skill_config] = max_concurrent_tasks(decoded)
            active = _active_tasks(stats)
            status = NodeStatus.BUSY if active >= cap else NodeStatus.ONLINE
            if status != old_status:
                changed_status.append(pk)
            current.append(_Beat(pk, node_id, status, stats))
        current = _write_beats(current, now) if current else current
        if not current:
            return 0
        _record_samples(current, now)
        viewers = selectors.node_user_ids_many(node_pks=[b.pk for b in current])
        if changed_status:
            for node in Node.objects.filter(pk__in=changed_status):
                _status_frame(node)
        events.send_many_on_commit(_stats_frames(current, viewers))
    return len(current)


def _active_tasks(stats: dict[str, Any]) -> int:
    try:
        return int(stats.get("active_tasks", 0))
    except (TypeError, ValueError, OverflowError):  # stats that skipped the edge's cleaning
        return 0


#: What a refused row raises: the database's refusal, or the JSON encoder's.
_ROW_ERRORS = (DatabaseError, TypeError, ValueError, OverflowError)


def _write_beats(nodes: list[_Beat], now: datetime) -> list[_Beat]:
    """Write the batch; the beats written are returned.

    The batch runs in a savepoint. If the database refuses it (a row it cannot store, say a
    NaN that reached the flush), each beat is written alone in a savepoint of its own, so
    only the refused ones are lost and every other node stays online; logged once a flush.
    """
    try:
        with transaction.atomic():
            _execute_beats(nodes, now)
    except _ROW_ERRORS as exc:
        written, refused = [], []
        for beat in nodes:
            try:
                with transaction.atomic():
                    _execute_beats([beat], now)
            except _ROW_ERRORS:
                refused.append(beat.node_id)
            else:
                written.append(beat)
        logger.warning(
            "heartbeat flush: the database refused %d of %d beats (%s), lost: %s",
            len(refused),
            len(nodes),
            type(exc).__name__,
            ", ".join(refused[:10]) + (" …" if len(refused) > 10 else ""),
        )
        return written
    return nodes


def _record_samples(nodes: list[_Beat], now: datetime) -> None:
    """Stats history for the written beats; a failure here costs one bucket, never the beats."""
    try:
        with transaction.atomic():
            stats_samples_record_many(samples=[(b.pk, b.stats) for b in nodes], now=now)
    except _ROW_ERRORS:
        logger.exception("heartbeat flush: stats samples not recorded")


def _execute_beats(nodes: list[_Beat], now: datetime) -> None:
    store.heartbeats_write(beats=[(n.pk, n.status, n.stats) for n in nodes], now=now)


def _stats_frames(nodes: list[_Beat], viewers: dict[int, list[int]]) -> list[tuple[str, Any]]:
    """One `node.stats` per node console, and one `nodes.stats` list per viewing user."""
    frames: list[tuple[str, dict[str, Any]]] = []
    per_user: dict[int, list[dict[str, Any]]] = {}
    for node in nodes:
        payload = {"node_id": node.node_id, "status": node.status, "stats": node.stats}
        frames.append(
            (
                events.group_name(events.NODE_CONSOLE_GROUP, node_id=node.node_id),
                {"type": events.NODE_STATS, "seq": events.frame_seq(), **payload},
            )
        )
        for user_id in viewers.get(node.pk, []):
            per_user.setdefault(user_id, []).append(payload)
    for user_id, entries in per_user.items():
        frames.append(
            (
                events.group_name(events.USER_NODES_GROUP, user_id=user_id),
                {"type": events.NODES_STATS, "seq": events.frame_seq(), "nodes": entries},
            )
        )
    return frames


HEARTBEAT_FLUSH_SLACK = 2.0


def presence_sweep() -> dict[str, Any]:
    """Idempotent housekeeping run by every runmesh: silence, lost tasks, hub deadlines.

    Returns what changed: nodes marked offline, tasks marked lost, queued tasks ended
    `not_delivered` and (node_id, task_id) pairs that timed out (their holders should send
    TaskCancel).
    """
    interval = float(settings.MESH_HEARTBEAT_INTERVAL)
    grace = float(settings.MESH_RECONNECT_GRACE)
    now = timezone.now()
    # Beats reach the database through a batched flush (about a second late at most), so the
    # silence window allows for that on top of three missed intervals.
    silent_before = now - timedelta(seconds=3 * interval + HEARTBEAT_FLUSH_SLACK)
    offline: list[str] = []
    for node in Node.objects.exclude(status=NodeStatus.OFFLINE).filter(
        last_seen_at__lt=silent_before
    ):
        with transaction.atomic():
            changed = (
                Node.objects.filter(pk=node.pk, last_seen_at__lt=silent_before)
                .exclude(status=NodeStatus.OFFLINE)
                .update(
                    status=NodeStatus.OFFLINE,
                    offline_reason="heartbeat_missed",
                    disconnected_at=now,
                    updated_at=now,
                )
            )
            if changed:
                node.status = NodeStatus.OFFLINE
                node.offline_reason = "heartbeat_missed"
                _status_frame(node)
                offline.append(node.node_id)
    lost = 0
    gone_before = now - timedelta(seconds=grace)
    stale = Task.objects.filter(
        status__in=ACTIVE_STATUSES,
        node__status=NodeStatus.OFFLINE,
        node__disconnected_at__lt=gone_before,
    ).values_list("node__node_id", "pk")
    by_node: dict[str, list[uuid.UUID]] = {}
    for node_id, pk in stale:
        by_node.setdefault(node_id, []).append(pk)
    for node_id, pks in by_node.items():
        lost += tasks_mark_lost(node_id=node_id, task_ids=pks, reason="node_disconnected")
    margin = max(5.0, interval)
    timed_out = tasks_enforce_deadlines(margin=margin)
    not_delivered = tasks_expire_undelivered()
    return {
        "offline": offline,
        "lost": lost,
        "not_delivered": not_delivered,
        "timed_out": timed_out,
    }
