"""Live node consoles: `/ws/nodes/{node_id}/` (one node) and `/ws/me/` (every node I may see).

`/ws/nodes/{node_id}/`
- Refused before accept: 4401 anonymous, 4403 node not visible (also when it does not exist).
- First frame `node.snapshot`: `{"node", "can_run", "open_tasks", "recent_tasks"}`; each task
  carries `last_seq`, so a client knows what to fetch from
  `GET /api/v1/tasks/{id}/output/?after_seq=N`.
- `?after_seq=N`: the stored output after N of the node's open tasks is replayed as
  `task.output` frames (`"replayed": true`) before live frames; at most 1000 chunks per task,
  beyond that (or when the queue overflows) the client gets `resync` and fetches over REST.
- Live frames: node.status, node.stats, task.started, task.output, task.finished. A live
  `task.output` frame covers chunks `first_seq`..`seq` of one stream and carries their newest
  bytes (`skipped` counts the ones left out; see mesh.services.output). One whose `first_seq`
  skips ahead of the last seq sent for that task is preceded by the missing stored chunks (the
  channel layer may drop frames; the database does not).
- Client frames: `{"type": "run", "command": str, "timeout"?: number, "confirm"?: true,
  "delivery_timeout"?: number}` answered by `task.accepted` `{"task_id", "status"}` (a command
  the node's policy marks sensitive without `"confirm": true` gets an `error` frame with code
  `confirmation_required` naming it: ask the person, then send the frame again confirmed);
  `{"type": "cancel", "task_id"}` answered by `task.cancel_requested`. Both go through the
  same services and audit as REST (source "console"). Failures come back as
  `{"type": "error", "error": {"code", "message", "fields"?}}`.

`/ws/me/`: first `nodes.snapshot` `{"nodes": [...]}`, then node.status of every visible node,
`nodes.stats` `{"nodes": [{"node_id", "status", "stats"}]}` once per heartbeat flush, and
node.added / node.removed when grants change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from accounts.context import AuditContext
from cortex import errors
from cortex.consumers import CortexConsumer, Envelope
from mesh import events, selectors, services

TRACKED_TASKS = 256


def _query_int(scope: Mapping[str, Any], name: str) -> int | None:
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    values = query.get(name)
    if not values:
        return None
    try:
        return max(0, int(values[0]))
    except ValueError:
        return None


@database_sync_to_async
def _run(
    user_id: int,
    node_id: str,
    command: Any,
    timeout: Any,
    confirm: bool,
    delivery_timeout: Any,
    audit_context: AuditContext,
) -> dict[str, Any]:
    user = selectors.user_fresh(user_id=user_id)
    node = selectors.node_get_for_user(user=user, node_id=node_id)
    task = services.task_dispatch(
        actor=user,
        node=node,
        kind="shell",
        payload={"command": command},
        timeout=timeout,
        audit_context=audit_context,
        confirmed=confirm,
        delivery_timeout=delivery_timeout,
    )
    return {"task_id": str(task.pk), "status": task.status}


@database_sync_to_async
def _cancel(
    user_id: int, node_id: str, task_id: Any, audit_context: AuditContext
) -> dict[str, Any]:
    user = selectors.user_fresh(user_id=user_id)
    task = selectors.task_get_for_user(user=user, task_id=task_id)
    if task.node.node_id != node_id:
        raise errors.NotFound("No such task on this node.", code="task_not_found")
    task = services.task_cancel(
        actor=user, task=task, reason="console", audit_context=audit_context
    )
    return {"task_id": str(task.pk), "status": task.status}


class NodeConsumer(CortexConsumer):
    """One node's live console: status, stats, tasks and their output; run and cancel."""

    inbound = frozenset({"run", "cancel"})
    audit_transport = "console"

    node_id: str = ""

    async def authorize(self) -> None:
        self.node_id = str(self.scope["url_route"]["kwargs"]["node_id"])
        self.snapshot = await database_sync_to_async(selectors.node_snapshot)(
            user_id=self.user.pk, node_id=self.node_id
        )
        self.last_seq: OrderedDict[str, int] = OrderedDict()

    def group_names(self) -> list[str]:
        return [events.group_name(events.NODE_CONSOLE_GROUP, node_id=self.node_id)]

    def allowed(self) -> bool:
        return selectors.node_visible(user_id=self.user.pk, node_id=self.node_id)

    def access_key(self) -> tuple[str, int, str]:
        return ("node", self.user.pk, self.node_id)

    async def opened(self) -> None:
        snapshot = self.__dict__.pop("snapshot")  # sent once: not kept for the socket's life
        self.emit({"type": "node.snapshot", "seq": events.frame_seq(), **snapshot})
        after_seq = _query_int(self.scope, "after_seq")
        open_ids = [t["task_id"] for t in snapshot["open_tasks"]]
        if after_seq is None:
            for task in snapshot["open_tasks"]:
                self._track(task["task_id"], task["last_seq"])
            return
        frames = await database_sync_to_async(selectors.output_replay)(
            user_id=self.user.pk, node_id=self.node_id, after_seq=after_seq, task_ids=open_ids
        )
        for task_id in open_ids:
            self._track(task_id, after_seq)
        for frame in frames:
            self._track(frame["task_id"], frame["seq"])
            self.emit(frame)

    def _track(self, task_id: str, seq: int) -> None:
        self.last_seq[task_id] = seq
        self.last_seq.move_to_end(task_id)
        while len(self.last_seq) > TRACKED_TASKS:
            self.last_seq.popitem(last=False)

    # --- client frames -------------------------------------------------------------------------

    async def on_run(self, envelope: Envelope) -> None:
        command = envelope.payload.get("command")
        if not isinstance(command, str):
            raise errors.ValidationFailed(fields={"command": ["A command string is required."]})
        timeout = envelope.payload.get("timeout", 30)
        confirm = envelope.payload.get("confirm", False)
        if not isinstance(confirm, bool):
            raise errors.ValidationFailed(fields={"confirm": ["Must be true or false."]})
        delivery_timeout = envelope.payload.get("delivery_timeout")
        accepted = await _run(
            self.user.pk,
            self.node_id,
            command,
            timeout,
            confirm,
            delivery_timeout,
            self.audit_context,
        )
        self._track(accepted["task_id"], 0)
        self.emit(self._reply("task.accepted", envelope, accepted))

    async def on_cancel(self, envelope: Envelope) -> None:
        task_id = envelope.payload.get("task_id")
        if not isinstance(task_id, str):
            raise errors.ValidationFailed(fields={"task_id": ["A task id is required."]})
        result = await _cancel(self.user.pk, self.node_id, task_id, self.audit_context)
        self.emit(self._reply("task.cancel_requested", envelope, result))

    @staticmethod
    def _reply(kind: str, envelope: Envelope, body: dict[str, Any]) -> dict[str, Any]:
        frame = {"type": kind, "seq": events.frame_seq(), **body}
        if envelope.seq is not None:
            frame["reply_to"] = envelope.seq
        return frame

    # --- group frames (named after their type) -------------------------------------------------

    async def node_status(self, event: dict[str, Any]) -> None:
        self.emit(event)

    async def node_stats(self, event: dict[str, Any]) -> None:
        self.emit(event)

    async def task_started(self, event: dict[str, Any]) -> None:
        self.emit(event)

    async def task_finished(self, event: dict[str, Any]) -> None:
        self.emit(event)

    async def task_output(self, event: dict[str, Any]) -> None:
        task_id = str(event.get("task_id", ""))
        seq = int(event.get("seq") or 0)
        first = int(event.get("first_seq") or seq)  # a coalesced frame covers first_seq..seq
        last = self.last_seq.get(task_id)
        if last is not None and seq <= last:
            return  # sent already (replay or gap fill)
        if last is not None and first != last + 1:
            # A gap (frames the layer dropped) is filled from storage; a frame overlapping a
            # replay is replaced by the stored chunks through its seq.
            before = first if first > last else seq + 1
            try:
                missing = await database_sync_to_async(selectors.output_gap)(
                    user_id=self.user.pk, task_id=task_id, after_seq=last, before_seq=before
                )
            except errors.CortexError:
                missing = []
            for frame in missing:
                self.emit(frame)
            if first <= last:
                self._track(task_id, seq)
                return
        self._track(task_id, seq)
        self.emit(event)

    async def node_access_revoked(self, event: dict[str, Any]) -> None:
        """A grant of this node went away: re-check now instead of at the next tick."""
        await self.recheck()


class MeConsumer(CortexConsumer):
    """Status and stats of every node the user may see."""

    visible: set[str]

    def group_names(self) -> list[str]:
        return [events.group_name(events.USER_NODES_GROUP, user_id=self.user.pk)]

    async def opened(self) -> None:
        nodes = await database_sync_to_async(selectors.nodes_snapshot)(user_id=self.user.pk)
        self.visible = {n["node_id"] for n in nodes}
        self.emit({"type": "nodes.snapshot", "seq": events.frame_seq(), "nodes": nodes})

    async def rechecked(self) -> None:
        """Tell the client about nodes granted or revoked since the last check."""
        nodes = await database_sync_to_async(selectors.nodes_snapshot)(user_id=self.user.pk)
        now = {n["node_id"]: n for n in nodes}
        for node_id in sorted(self.visible - now.keys()):
            self.emit({"type": "node.removed", "seq": events.frame_seq(), "node_id": node_id})
        for node_id in sorted(now.keys() - self.visible):
            self.emit({"type": "node.added", "seq": events.frame_seq(), "node": now[node_id]})
        self.visible = set(now)

    async def node_status(self, event: dict[str, Any]) -> None:
        if event.get("node_id") in self.visible:
            self.emit(event)

    async def agent_run(self, event: dict[str, Any]) -> None:
        """A scheduled agent's run of this user changed state (agents.services.notify)."""
        self.emit(event)

    async def nodes_stats(self, event: dict[str, Any]) -> None:
        """A heartbeat flush's stats for this user: pass on the nodes still visible."""
        nodes = [n for n in event.get("nodes", []) if n.get("node_id") in self.visible]
        if nodes:
            self.emit({**event, "nodes": nodes})
