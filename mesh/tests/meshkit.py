"""A small test node client (real gRPC over loopback) and fixtures for the mesh tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cortex.testing import wait_until_async
from mesh.agent.pb import mesh_pb2, mesh_pb2_grpc

CLIENT_OPTIONS = [
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


async def join(address: str, node_id: str, token: str) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await mesh_pb2_grpc.NodeMeshStub(channel).Join(
            mesh_pb2.JoinRequest(
                node_id=node_id, invite_token=token, version="t1", platform="linux"
            ),
            timeout=10,
        )
    return reply.credential


async def wait_serving(address: str, timeout: float = 20.0) -> None:
    """Wait until the server's health service says SERVING."""

    async def serving() -> bool:
        async with grpc.aio.insecure_channel(address) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    await wait_until_async(
        serving,
        timeout=timeout,
        ignore=(grpc.aio.AioRpcError,),
        message=f"gRPC server on {address} did not become healthy",
    )


class TestNode:
    """The node side of one Connect stream, driven step by step by a test."""

    __test__ = False

    def __init__(self, address: str, node_id: str, credential: str) -> None:
        self.address = address
        self.node_id = node_id
        self.credential = credential
        self.channel = grpc.aio.insecure_channel(address, options=CLIENT_OPTIONS)
        self.stub = mesh_pb2_grpc.NodeMeshStub(self.channel)
        self.outbox: asyncio.Queue[mesh_pb2.NodeMessage | None] = asyncio.Queue()
        self.call: Any = None
        self.welcome: mesh_pb2.Welcome | None = None
        self.backlog: list[mesh_pb2.HubMessage] = []
        self.inbox: asyncio.Queue[mesh_pb2.HubMessage | None] = asyncio.Queue()
        self.pump: asyncio.Task[None] | None = None

    async def _pump(self) -> None:
        """Read the stream in the background (cancelling a read would cancel the call)."""
        try:
            while True:
                message = await self.call.read()
                if message is grpc.aio.EOF:
                    return
                await self.inbox.put(message)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            return
        finally:
            self.inbox.put_nowait(None)

    async def _requests(self) -> AsyncIterator[mesh_pb2.NodeMessage]:
        while True:
            message = await self.outbox.get()
            if message is None:
                return
            yield message

    async def connect(
        self,
        *,
        held: list[mesh_pb2.HeldTask] | None = None,
        credential: str | None = None,
        **hello: Any,
    ) -> mesh_pb2.Welcome:
        """Open a stream with Hello (`hello`: more Hello fields, e.g. terminal_ids)."""
        metadata = (
            ("cortex-node-id", self.node_id),
            ("cortex-node-credential", credential if credential is not None else self.credential),
        )
        self.call = self.stub.Connect(self._requests(), metadata=metadata)
        self.inbox = asyncio.Queue()
        self.backlog = []
        self.pump = asyncio.create_task(self._pump())
        await self.send(
            hello=mesh_pb2.Hello(
                version="t1",
                platform="linux",
                hostname="test",
                capabilities={"shell": True, "files": True, "browser": False},
                held_tasks=held or [],
                **hello,
            )
        )
        reply = await self.recv("welcome")
        self.welcome = reply.welcome
        return reply.welcome

    async def send(self, **body: Any) -> None:
        await self.outbox.put(mesh_pb2.NodeMessage(**body))

    async def recv(self, kind: str, timeout: float = 10.0) -> mesh_pb2.HubMessage:
        """The next hub message of `kind` (others are kept in `backlog`)."""
        for kept in self.backlog:
            if kept.WhichOneof("body") == kind:
                self.backlog.remove(kept)
                return kept
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} within {timeout} s; backlog {self.backlog}")
            message = await asyncio.wait_for(self.inbox.get(), timeout=remaining)
            if message is None:
                self.inbox.put_nowait(None)
                raise EOFError("stream ended")
            if message.WhichOneof("body") == kind:
                return message
            self.backlog.append(message)

    async def output(
        self,
        task_id: str,
        seq: int,
        data: bytes,
        stream: mesh_pb2.OutputStream = mesh_pb2.STDOUT,
    ) -> None:
        await self.send(
            task_output=mesh_pb2.TaskOutput(task_id=task_id, seq=seq, stream=stream, data=data)
        )

    async def result(
        self, task_id: str, outcome: mesh_pb2.TaskOutcome = mesh_pb2.SUCCEEDED, **extra: Any
    ) -> None:
        await self.send(task_result=mesh_pb2.TaskResult(task_id=task_id, outcome=outcome, **extra))

    async def heartbeat(self, active: int = 0) -> None:
        await self.send(
            heartbeat=mesh_pb2.Heartbeat(
                stats=mesh_pb2.NodeStats(
                    cpu_percent=12.5,
                    cpu_count=2,
                    memory_total=1000,
                    memory_used=400,
                    active_tasks=active,
                )
            )
        )

    def keep_beating(self, interval: float = 0.2) -> asyncio.Task[None]:
        """Heartbeat in the background like a live agent (cancel the task to stop)."""

        async def beat() -> None:
            while True:
                await self.heartbeat()
                await asyncio.sleep(interval)

        return asyncio.create_task(beat())

    async def run_echo(self, timeout: float = 10.0) -> str:
        """Answer the next TaskAssign like an agent would for `echo X`."""
        assign = (await self.recv("task_assign", timeout)).task_assign
        payload = json.loads(assign.payload_json)
        text = payload["command"].removeprefix("echo ").strip() + "\n"
        await self.send(task_started=mesh_pb2.TaskStarted(task_id=assign.task_id))
        await self.output(assign.task_id, 1, text.encode())
        await self.recv("output_ack")
        await self.result(assign.task_id, exit_code=0, last_seq=1)
        await self.recv("result_ack")
        return assign.task_id

    async def status(self) -> grpc.StatusCode:
        """Wait for the call to end; its status code."""
        if self.pump is not None:
            await asyncio.wait_for(asyncio.shield(self.pump), timeout=10)
        return await asyncio.wait_for(self.call.code(), timeout=10)

    async def hang_up(self) -> None:
        """Drop the connection without a goodbye, as a crashed or killed node would."""
        if self.call is not None:
            self.call.cancel()
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        await self.channel.close(grace=None)

    async def goodbye(self) -> None:
        await self.send(goodbye=mesh_pb2.Goodbye(reason="bye"))
        await self.outbox.put(None)


@pytest.fixture
def mesh_settings(settings):  # type: ignore[no-untyped-def]
    """Short intervals so presence and grace periods play out within a test."""
    settings.MESH_HEARTBEAT_INTERVAL = 0.5
    settings.MESH_RECONNECT_GRACE = 1.5
    return settings


@pytest.fixture
async def mesh_address(transactional_db, mesh_settings, free_port) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """The real grpc.aio server (`serve`) on a loopback port in this test's event loop."""
    from mesh.grpc.server import serve

    address = f"127.0.0.1:{free_port()}"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(address, stop_event=stop, grace=1.0))
    await wait_serving(address)
    yield address
    stop.set()
    await asyncio.wait_for(task, timeout=20)
