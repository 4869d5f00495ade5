"""The agent's connection to the hub: Join once, then one Connect stream, reconnecting forever.

The node always dials out. Reconnects use exponential backoff with full jitter (capped); a
Reconnect message from a stopping hub sets the next delay instead. Output and results are resent
from the spool after every reconnect, from the seq the hub says it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import random
import socket
from typing import Any

import grpc

from . import __version__, stats
from .backoff import Backoff
from .compat import TIMEOUTS, os_description, python_description
from .config import AgentConfig
from .credentials import CredentialStore, fingerprint
from .pb import mesh_pb2, mesh_pb2_grpc
from .skills.shell import build_env, shell_program
from .spool import Spool
from .tasks import TaskRunner, output_message, recover, result_message
from .terminals import TerminalLimits, TerminalManager

logger = logging.getLogger("cortex_agent")

NODE_ID_KEY = "cortex-node-id"
CREDENTIAL_KEY = "cortex-node-credential"
WELCOME_TIMEOUT = 30.0
JOIN_TIMEOUT = 20.0
GOODBYE_WAIT = 2.0
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
CHANNEL_OPTIONS: list[tuple[str, str | int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.enable_retries", 0),
]
# Join answers that will not change by retrying: the invite is wrong, used or expired.
FATAL_JOIN_CODES = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
}
EXIT_CONFIG = 78  # EX_CONFIG: the operator must fix something


class JoinRefused(Exception):
    """The hub refused the invite; retrying cannot help."""


class ProtocolError(Exception):
    """The hub answered something this agent does not expect."""


#: What ends one connection attempt and is retried with backoff.
RETRIED: tuple[type[Exception], ...] = (ProtocolError, OSError, *TIMEOUTS)


class Agent:
    """One node agent process."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.credentials = CredentialStore(config.credential_file)
        self.spool = Spool(config.spool_dir)
        self.runner = TaskRunner(config, self.spool, self.send)
        self.terminals = TerminalManager(
            TerminalLimits(
                enabled=config.terminal_enabled,
                max_sessions=config.terminal_max_sessions,
                idle_timeout=config.terminal_idle_timeout,
                window_bytes=config.terminal_window_bytes,
            ),
            self.send,
        )
        self.outbox: asyncio.Queue[mesh_pb2.NodeMessage | None] | None = None
        self.stopping = asyncio.Event()
        self.heartbeat_interval = 30.0
        self.backoff = Backoff(
            initial=config.reconnect_initial,
            factor=config.reconnect_factor,
            cap=config.reconnect_max,
        )
        self.connected = asyncio.Event()  # set while a Welcome'd stream is up (tests watch it)

    # ------------------------------------------------------------------ plumbing
    def send(self, message: mesh_pb2.NodeMessage) -> None:
        """Queue a message on the live stream; without one it is dropped (the spool keeps it)."""
        if self.outbox is not None:
            self.outbox.put_nowait(message)

    def stop(self) -> None:
        self.stopping.set()

    def _channel(self) -> grpc.aio.Channel:
        address = self.config.hub_address
        if not self.config.tls:
            return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        root = self.config.tls_ca_file.read_bytes() if self.config.tls_ca_file else None
        options = list(CHANNEL_OPTIONS)
        if self.config.tls_server_name:
            options.append(("grpc.ssl_target_name_override", self.config.tls_server_name))
        credentials = grpc.ssl_channel_credentials(root_certificates=root)
        return grpc.aio.secure_channel(address, credentials, options=options)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(*TIMEOUTS):
            await asyncio.wait_for(self.stopping.wait(), timeout=max(seconds, 0.0))

    # ------------------------------------------------------------------ main loop
    async def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        self.config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.runner.workspace.ensure()
        ended = await recover(self.spool, (1.0, 1.0))
        if ended:
            logger.info("ended %s task(s) left running by a previous run", len(ended))
        stats.prime()
        try:
            while not self.stopping.is_set():
                delay: float | None = None
                try:
                    credential = self.credentials.load()
                    if credential is None:
                        credential = await self.join()
                    delay = await self.session(credential)
                except JoinRefused as exc:
                    logger.error("the hub refused to join: %s", exc)
                    return EXIT_CONFIG
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                        logger.error("the hub refused this node's credential: %s", exc.details())
                    else:
                        logger.warning("hub connection: %s %s", exc.code().name, exc.details())
                except RETRIED as exc:
                    logger.warning("hub connection: %s", exc)
                self.runner.stream_closed()
                if self.stopping.is_set():
                    break
                wait = delay if delay is not None else self.backoff.next()
                logger.info("reconnecting in %.2f s", wait)
                await self._sleep(wait)
        finally:
            await self.terminals.stop_all()
            await self.runner.stop_all(timeout=max(sum(self.config.cancel_grace) + 2.0, 5.0))
        return 0

    async def join(self) -> str:
        """Trade the invite token for a node credential and save it (0600)."""
        token = self.config.invite_token
        if not token:
            raise JoinRefused("no saved credential and no invite_token in the configuration")
        async with self._channel() as channel:
            stub = mesh_pb2_grpc.NodeMeshStub(channel)
            try:
                response = await stub.Join(
                    mesh_pb2.JoinRequest(
                        node_id=self.config.node_id,
                        invite_token=token,
                        version=__version__,
                        platform=platform.platform(),
                    ),
                    timeout=JOIN_TIMEOUT,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() in FATAL_JOIN_CODES:
                    raise JoinRefused(f"{exc.code().name}: {exc.details()}") from exc
                raise
        if not response.credential:
            raise ProtocolError("Join answered without a credential")
        self.credentials.save(response.credential)
        logger.info("joined the hub as %s", self.config.node_id)
        return response.credential

    def _hello(self) -> mesh_pb2.NodeMessage:
        held: dict[str, mesh_pb2.HeldTask] = {}
        for task_id, record in self.spool.records.items():
            held[task_id] = mesh_pb2.HeldTask(
                task_id=task_id, last_seq=record.last_seq, finished=record.finished
            )
        return mesh_pb2.NodeMessage(
            hello=mesh_pb2.Hello(
                version=__version__,
                platform=platform.platform(),
                hostname=socket.gethostname(),
                python_version=python_description(),
                os_name=os_description(),
                capabilities=self.runner.capabilities(),
                held_tasks=list(held.values()),
                terminal_ids=self.terminals.held(),
                terminal_input_keys=True,
            )
        )

    async def session(self, credential: str) -> float | None:
        """One Connect stream until it ends; returns a Reconnect delay if the hub asked for one."""
        metadata = ((NODE_ID_KEY, self.config.node_id), (CREDENTIAL_KEY, credential))
        async with self._channel() as channel:
            stub = mesh_pb2_grpc.NodeMeshStub(channel)
            call = stub.Connect(metadata=metadata)
            try:
                await call.write(self._hello())
                first = await asyncio.wait_for(call.read(), timeout=WELCOME_TIMEOUT)
                if first is grpc.aio.EOF:
                    await call.wait_for_connection()
                    raise ProtocolError("the hub closed the stream before Welcome")
                if first.WhichOneof("body") != "welcome":
                    raise ProtocolError("the hub did not answer Hello with Welcome")
                return await self._serve(call, first.welcome)
            finally:
                self.outbox = None
                self.connected.clear()
                call.cancel()

    def _apply(self, policy: mesh_pb2.SandboxPolicy, skills: mesh_pb2.SkillConfig) -> None:
        """Adopt the hub's policy; terminals it no longer allows are hung up (fail closed)."""
        self.runner.apply(policy, skills)
        allowed = self.runner.policy.terminals_allowed and self.runner.skill_enabled("shell")
        if not allowed and self.terminals.close_all():
            logger.info("the policy no longer allows terminals: open ones hung up")

    async def _serve(self, call: Any, welcome: mesh_pb2.Welcome) -> float | None:
        self.backoff.reset()
        self._apply(welcome.policy, welcome.skills)
        interval = welcome.heartbeat_interval_s
        self.heartbeat_interval = interval if interval > 0 else 30.0
        self.runner.abandon(list(welcome.abandon_task_ids))
        outbox: asyncio.Queue[mesh_pb2.NodeMessage | None] = asyncio.Queue()
        for task_id, seq in welcome.acked_seq.items():
            self.spool.ack_output(task_id, seq)
        # Resend in seq order before anything new is queued (the hub stores seq > last only).
        for task_id, record in list(self.spool.records.items()):
            for chunk in self.spool.pending(task_id):
                outbox.put_nowait(output_message(task_id, chunk.seq, chunk.stream, chunk.data))
            if record.result is not None:
                outbox.put_nowait(result_message(task_id, record.result))
        for pending in self.terminals.resend():  # live sessions, unacked output, exits
            outbox.put_nowait(pending)
        self.outbox = outbox
        self.connected.set()
        logger.info("connected to the hub (heartbeat every %.1f s)", self.heartbeat_interval)
        writer = asyncio.create_task(self._writer(call, outbox))
        beat = asyncio.create_task(self._heartbeats())
        stop = asyncio.create_task(self.stopping.wait())
        delay: float | None = None
        try:
            while True:
                read = asyncio.create_task(call.read())
                done, _ = await asyncio.wait({read, stop, writer}, return_when="FIRST_COMPLETED")
                if read not in done:
                    if writer in done and writer.exception() is not None:
                        read.cancel()
                        raise writer.exception()  # type: ignore[misc]
                    bye = mesh_pb2.Goodbye(reason="agent stopping")
                    outbox.put_nowait(mesh_pb2.NodeMessage(goodbye=bye))
                    # Let the hub end the call itself (it records the goodbye), then hang up.
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(read), timeout=GOODBYE_WAIT)
                    read.cancel()
                    return None
                message = read.result()
                if message is grpc.aio.EOF:
                    await call.wait_for_connection()
                    return None
                if message.WhichOneof("body") == "file_chunk":
                    # Awaited: a full push queue holds the stream back (gRPC flow control).
                    await self.runner.file_chunk(message.file_chunk)
                    continue
                if message.WhichOneof("body") == "terminal_open":
                    await self._terminal_open(message.terminal_open)
                    continue
                delay = self._handle(message)
                if delay is not None:
                    return delay
        finally:
            for task in (beat, stop):
                task.cancel()
            self.outbox = None
            if not writer.done():
                outbox.put_nowait(None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, timeout=2.0)
            writer.cancel()

    async def _writer(self, call: Any, outbox: asyncio.Queue[mesh_pb2.NodeMessage | None]) -> None:
        while True:
            message = await outbox.get()
            if message is None:
                with contextlib.suppress(Exception):
                    await call.done_writing()
                return
            await call.write(message)

    async def _heartbeats(self) -> None:
        while True:
            stats_now = stats.collect(active_tasks=len(self.runner.running))
            self.send(mesh_pb2.NodeMessage(heartbeat=mesh_pb2.Heartbeat(stats=stats_now)))
            await asyncio.sleep(self.heartbeat_interval * random.uniform(0.85, 1.15))

    async def _terminal_open(self, message: mesh_pb2.TerminalOpen) -> None:
        """Open a terminal if this node's policy and skill switches allow one."""
        refusal: tuple[str, str] | None = None
        env: dict[str, str] = {}
        root = self.runner.workspace.root
        if not self.runner.policy.terminals_allowed:
            refusal = ("terminals_not_allowed", "This node's policy does not allow terminals.")
        elif not self.runner.skill_enabled("shell"):
            refusal = ("skill_disabled", "The shell skill is disabled on this node.")
        else:
            try:
                root.mkdir(parents=True, exist_ok=True, mode=0o700)
                env = build_env(
                    allow=self.config.env_allow, fixed=self.config.env_set, declared=None, home=root
                )
            except (OSError, ValueError):
                refusal = ("terminal_start_failed", "The workspace or environment is not usable.")
        await self.terminals.open(
            message,
            refusal=refusal,
            program=shell_program(self.config.shell_program),
            cwd=root,
            env=env,
        )

    def _handle(self, message: mesh_pb2.HubMessage) -> float | None:
        """Act on one hub message; returns a delay when the hub asks for a reconnect."""
        kind = message.WhichOneof("body")
        if kind == "task_assign":
            self.runner.assign(message.task_assign)
        elif kind == "task_cancel":
            self.runner.cancel(message.task_cancel.task_id, message.task_cancel.reason)
        elif kind == "output_ack":
            self.spool.ack_output(message.output_ack.task_id, message.output_ack.seq)
        elif kind == "result_ack":
            self.spool.forget(message.result_ack.task_id)
        elif kind == "terminal_input":
            keys = message.terminal_input
            self.terminals.input(keys.session_id, keys.data, keys.key)
        elif kind == "terminal_resize":
            resize = message.terminal_resize
            self.terminals.resize(resize.session_id, resize.rows, resize.cols, resize.key)
        elif kind == "terminal_close":
            self.terminals.close(message.terminal_close.session_id)
        elif kind == "terminal_ack":
            ack = message.terminal_ack
            self.terminals.ack(ack.session_id, ack.seq, ack.final)
        elif kind == "policy_update":
            self._apply(message.policy_update.policy, message.policy_update.skills)
            logger.info("policy updated by the hub")
        elif kind == "credential_rotation":
            secret = message.credential_rotation.credential
            try:
                self.credentials.save(secret)
            except OSError:
                logger.exception("could not save the rotated credential; not acknowledging it")
                return None
            self.send(
                mesh_pb2.NodeMessage(
                    credential_ack=mesh_pb2.CredentialAck(fingerprint=fingerprint(secret))
                )
            )
            logger.info("credential rotated")
        elif kind == "reconnect":
            after = message.reconnect.after_s
            logger.info("the hub asked to reconnect: %s", message.reconnect.reason)
            return max(after, 0.0) + random.uniform(0, max(after, 0.5) * 0.5)
        elif kind == "welcome":
            self._apply(message.welcome.policy, message.welcome.skills)
        return None
