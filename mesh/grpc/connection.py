"""One node's Connect stream: translate messages to services and doorbells to hub messages.

Per-connection state here is transport only (an outbox, a rate limiter); what the node is and
what it must run is read from the database on every doorbell.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import grpc
from django.conf import settings

from cortex import metrics
from cortex.errors import CortexError, ValidationFailed
from mesh import events
from mesh.agent.pb import mesh_pb2
from mesh.grpc import file_stream, messages, output_pump, terminal_stream
from mesh.grpc.messages import Flag, Outbox, RateLimiter, policy_pb, skills_pb, stats_dict
from mesh.grpc.output_pump import OUTPUT_BATCH_CHUNKS
from mesh.grpc.status import abort_code, abort_with
from mesh.services import aio
from mesh.services.output import OutputChunk

if TYPE_CHECKING:
    from mesh.grpc.hub import StreamHub
    from mesh.models import Task

logger = logging.getLogger("cortex.mesh.grpc")

STREAMS = {mesh_pb2.STDOUT: "stdout", mesh_pb2.STDERR: "stderr"}
HELLO_TIMEOUT = 30.0


class NodeConnection:
    """The hub side of one Connect call."""

    # Slots: one of these per connected node, thousands per process.
    __slots__ = (
        "bell_task",
        "bells",
        "close_reason",
        "closed",
        "connection_id",
        "context",
        "deliver_again",
        "failure",
        "group",
        "hub",
        "limiter",
        "more_queued",
        "node_id",
        "outbox",
        "output",
        "output_store",
        "pending_delivery",
        "resumed",
        "stopping",
        "terminals",
    )

    def __init__(self, hub: StreamHub, node_id: str, context: grpc.aio.ServicerContext) -> None:
        self.hub = hub
        self.node_id = node_id
        self.context = context
        self.connection_id = uuid.uuid4().hex
        self.outbox: Outbox[mesh_pb2.HubMessage | None] = Outbox()
        self.closed = Flag()
        self.close_reason = "disconnected"
        self.stopping = False
        self.limiter: RateLimiter | None = None
        self.group = events.group_name(events.NODE_GROUP, node_id=node_id)
        self.pending_delivery: asyncio.Task[None] | None = None
        self.deliver_again = False
        #: Whether the last claim was limited by the node's free slots rather than the queue:
        #: only then is a slot freed by a result worth a claim (new tasks ring a doorbell).
        self.more_queued = True
        self.bells: deque[dict[str, Any]] | None = None  # from the first doorbell on
        self.bell_task: asyncio.Task[None] | None = None
        # Output queue and its store task exist from the node's first TaskOutput on: most
        # streams of a busy hub are idle, and each costs memory.
        self.output: asyncio.Queue[OutputChunk] | None = None
        self.output_store: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        #: What the Welcome told the node is stored, per held task: resends up to there are
        #: acked from here (a reconnect storm resends spooled output; no DB round each).
        self.resumed: dict[str, int] | None = None
        self.terminals: terminal_stream.TerminalStream | None = None  # from Hello on

    # ------------------------------------------------------------------ lifecycle
    async def run(self, requests: Any) -> None:
        try:
            first = await asyncio.wait_for(anext(requests), timeout=HELLO_TIMEOUT)
        except (StopAsyncIteration, TimeoutError):
            first = None
        if first is None or first.WhichOneof("body") != "hello":
            await abort_code(
                self.context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "Send Hello first.",
                "hello_required",
            )
        hello = first.hello
        try:
            welcome = await aio.node_hello(
                node_id=self.node_id,
                connection_id=self.connection_id,
                version=hello.version,
                platform=hello.platform,
                hostname=hello.hostname,
                python_version=hello.python_version,
                os_name=hello.os_name,
                capabilities=messages.capabilities_of(hello),
                held=messages.held_of(hello),
            )
        except CortexError as exc:
            await abort_with(self.context, exc)
        await self.hub.attach(self)
        writer = asyncio.create_task(self._writer(), name=f"mesh-write-{self.node_id}")
        reader = asyncio.create_task(self._reader(requests), name=f"mesh-read-{self.node_id}")
        reader.add_done_callback(self._ended)
        try:
            self.send(messages.welcome_pb(welcome))
            self.resumed = dict(welcome.acked_seq) or None
            await terminal_stream.hello(self, hello)
            del first, hello, welcome  # this frame lives as long as the stream (~2 KB a node)
            await self._catch_up()
            await self.closed.wait()  # set by close(), or when the reader or the store ends
        finally:
            self.closed.set()  # no more background deliveries on this stream
            for task in (reader, self.bell_task, self.output_store, self.pending_delivery):
                if task is not None:
                    task.cancel()
            await terminal_stream.end(self)  # terminal output received is stored first
            self.outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, timeout=5)
            with contextlib.suppress(Exception):
                await self.hub.detach(self)
            with contextlib.suppress(Exception):
                await aio.node_disconnected(
                    node_id=self.node_id,
                    connection_id=self.connection_id,
                    reason=self.close_reason,
                )
        if (failure := self.failure) is not None:
            if isinstance(failure, CortexError):
                await abort_with(self.context, failure)
            raise failure

    def send(self, message: mesh_pb2.HubMessage) -> None:
        self.outbox.put_nowait(message)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The reader or the output store finished: the stream ends, with its error if any."""
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()
        self.closed.set()

    def _output_queue(self) -> asyncio.Queue[OutputChunk]:
        if self.output is None:
            self.output = asyncio.Queue(maxsize=4 * OUTPUT_BATCH_CHUNKS)
            self.output_store = asyncio.create_task(output_pump.pump(self, self.output))
            self.output_store.add_done_callback(self._ended)
        return self.output

    def deliver_soon(self) -> None:
        """Claim and send queued tasks in the background (a result freed a slot, or the flush
        found queued work); asked again while one runs, it runs once more after it."""
        if self.closed.is_set():
            return
        if self.pending_delivery is not None:
            self.deliver_again = True
            return
        self.pending_delivery = asyncio.create_task(self._deliver_logged())

    async def _deliver_logged(self) -> None:
        try:
            self.deliver_again = True
            while self.deliver_again and not self.closed.is_set():
                self.deliver_again = False
                await self._deliver()
        except Exception:  # the next flush or doorbell tries again
            logger.exception("delivery for node %s failed", self.node_id)
        finally:
            self.pending_delivery = None

    def close(self, reason: str) -> None:
        """End the stream; the first reason given wins (a goodbye stays a goodbye)."""
        if not self.stopping and not self.closed.is_set():
            self.close_reason = reason
        self.closed.set()

    def mark_stopping(self) -> None:
        """The hub is going away: whatever ends the stream, record that reason."""
        self.stopping = True
        self.close_reason = "hub_stopping"

    async def _writer(self) -> None:
        while True:
            message = await self.outbox.get()
            if message is None:
                return
            await self.context.write(message)

    # ------------------------------------------------------------------ hub -> node
    async def _catch_up(self) -> None:
        """What a doorbell may have missed: queued tasks, cancellations, a rotation."""
        await self._deliver()
        await self._send_cancels([])
        await self._rotate()

    async def _deliver(self) -> None:
        claimed = await aio.tasks_claim_for_delivery(
            node_id=self.node_id, connection_id=self.connection_id
        )
        if claimed is None:
            self.close("superseded")
            return
        self.more_queued = claimed.more
        for task in claimed.tasks:
            self._assign(task)

    def _assign(self, task: Task) -> None:
        """Hand one claimed task to the node."""
        self.send(
            mesh_pb2.HubMessage(
                task_assign=mesh_pb2.TaskAssign(
                    task_id=str(task.pk),
                    kind=task.kind,
                    payload_json=json.dumps(task.payload).encode(),
                    timeout_s=task.timeout,
                    idempotency_key=task.idempotency_key,
                )
            )
        )
        file_stream.start(self, task)  # a staged push follows its TaskAssign as FileChunks

    async def _send_cancels(self, extra: list[str]) -> None:
        pending = await aio.tasks_pending_cancel(node_id=self.node_id)
        seen = set()
        for task_id, reason in [*pending, *((t, "deadline") for t in extra)]:
            if task_id in seen:
                continue
            seen.add(task_id)
            self.send(
                mesh_pb2.HubMessage(task_cancel=mesh_pb2.TaskCancel(task_id=task_id, reason=reason))
            )

    async def _rotate(self) -> None:
        secret = await aio.credential_mint_rotation(node_id=self.node_id)
        if secret:
            self.send(
                mesh_pb2.HubMessage(
                    credential_rotation=mesh_pb2.CredentialRotation(credential=secret)
                )
            )

    def ring(self, message: dict[str, Any]) -> None:
        """A doorbell for this node, from the hub's shared channel: answered in arrival order
        by a task that exists only while there are bells to answer."""
        if self.closed.is_set():
            return
        if self.bells is None:
            self.bells = deque()
        self.bells.append(message)
        if self.bell_task is None:
            self.bell_task = asyncio.create_task(self._answer_bells())

    async def _answer_bells(self) -> None:
        try:
            while self.bells and not self.closed.is_set():
                await self._answer(self.bells.popleft())
            self.bells = None
        finally:
            self.bell_task = None

    async def _answer(self, message: dict[str, Any]) -> None:
        reason = message.get("reason", "")
        try:
            if reason == events.RING_TASKS:
                await self._deliver()
            elif reason == events.RING_CANCEL:
                await self._send_cancels([str(t) for t in message.get("task_ids", [])])
            elif reason == events.RING_POLICY:
                policy = await aio.node_policy(node_id=self.node_id)
                if policy is not None:
                    self.send(
                        mesh_pb2.HubMessage(
                            policy_update=mesh_pb2.PolicyUpdate(
                                policy=policy_pb(policy[0]), skills=skills_pb(policy[1])
                            )
                        )
                    )
            elif reason.startswith("terminal."):
                await terminal_stream.answer(self, message)
            elif reason == events.RING_ROTATE:
                await self._rotate()
            elif reason == events.RING_KICK and not await aio.node_holds_stream(
                node_id=self.node_id, connection_id=self.connection_id
            ):
                self.close("superseded")
        except Exception:  # a failed doorbell costs latency; the next one catches up
            logger.exception("doorbell %s for node %s failed", reason, self.node_id)

    # ------------------------------------------------------------------ node -> hub
    async def _reader(self, requests: Any) -> None:
        async for message in requests:
            await self._handle(message)
        await self._flush_output()
        self.close("disconnected")

    async def _flush_output(self) -> None:
        """Wait until every received chunk is stored (before a result, a goodbye, the end)."""
        if self.output is not None:
            await output_pump.flush(self, self.output)

    async def _handle(self, message: mesh_pb2.NodeMessage) -> None:
        kind = message.WhichOneof("body")
        if kind == "heartbeat":
            # Queued work is checked for all beating nodes at once by the hub's flush.
            self.hub.beat(self.node_id, self.connection_id, stats_dict(message.heartbeat.stats))
        elif kind == "task_started":
            task_id = messages.task_id_of(message.task_started.task_id)
            await messages.retry_db(
                self, "task_started", aio.task_started, node_id=self.node_id, task_id=task_id
            )
        elif kind == "task_output":
            out = message.task_output
            stream = STREAMS.get(out.stream)
            if stream is None:
                raise ValidationFailed("Unknown output stream.", code="invalid_stream")
            if self.resumed and out.seq <= self.resumed.get(out.task_id, 0):
                ack = mesh_pb2.OutputAck(task_id=out.task_id, seq=self.resumed[out.task_id])
                self.send(mesh_pb2.HubMessage(output_ack=ack))
                return
            if self.limiter is None:  # from the first output on
                rate = float(settings.MESH_OUTPUT_RATE_BYTES)
                self.limiter = RateLimiter(rate, burst=max(rate, 4.5 * 1024 * 1024))
            await self.limiter.consume(len(out.data))
            metrics.TASK_OUTPUT_BYTES.labels(stream=stream).inc(len(out.data))
            chunk = OutputChunk(messages.task_id_of(out.task_id), out.seq, stream, out.data)
            await self._output_queue().put(chunk)
        elif kind == "task_result":
            await self._flush_output()  # the task's output is stored before its result
            await self._result(message.task_result)
        elif kind == "credential_ack":
            await messages.credential_ack(self, message.credential_ack)
        elif kind and kind.startswith("terminal_"):
            await terminal_stream.receive(self, message)
        elif kind == "goodbye":
            await self._flush_output()
            await terminal_stream.flush(self)
            self.close("goodbye")
        else:
            raise ValidationFailed("Unexpected message on the stream.", code="unexpected_message")

    async def _result(self, result: mesh_pb2.TaskResult) -> None:
        messages.task_id_of(result.task_id)
        if self.resumed:
            self.resumed.pop(result.task_id, None)
        parsed: Any = None
        if result.result_json:
            try:
                parsed = json.loads(result.result_json)
            except ValueError as exc:
                raise ValidationFailed("result_json is not JSON.", code="invalid_result") from exc
        await messages.retry_db(
            self,
            "task_finish",
            aio.task_finish,
            node_id=self.node_id,
            task_id=result.task_id,
            outcome=mesh_pb2.TaskOutcome.Name(result.outcome),
            exit_code=result.exit_code,
            error_code=result.error_code,
            error_message=result.error_message,
            last_seq=result.last_seq,
            result=parsed,
        )
        file_stream.stop(self, result.task_id)
        self.send(mesh_pb2.HubMessage(result_ack=mesh_pb2.ResultAck(task_id=result.task_id)))
        if self.more_queued:
            self.deliver_soon()  # a slot is free for a waiting task; the reader goes on
