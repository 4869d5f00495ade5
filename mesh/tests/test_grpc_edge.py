"""The gRPC edge: malformed or out-of-range requests get INVALID_ARGUMENT (or are dropped),
never UNKNOWN or INTERNAL with the parser's or a traceback's text."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from asgiref.sync import sync_to_async
from grpc_health.v1 import health_pb2

from mesh.agent.pb import mesh_pb2
from mesh.models import Node
from mesh.tests.meshkit import TestNode, join

pytestmark = pytest.mark.django_db(transaction=True)

BAD_UTF8 = b"\x0a\x03\xc3\x28\x00"  # field 1, a string, is no UTF-8
GARBAGE = [b"\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", BAD_UTF8]  # tag, length, text
# On Connect the string sits in a TaskStarted (field 3) of the NodeMessage.
STREAM_GARBAGE = [*GARBAGE[:2], b"\x1a\x05" + BAD_UTF8]
GENERIC = "The message could not be parsed."


def error_code(exc: grpc.aio.AioRpcError) -> str:
    return dict(exc.trailing_metadata() or ()).get("cortex-error-code", "")


def assert_invalid(exc: grpc.aio.AioRpcError, code: str = "malformed_message") -> None:
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.code(), exc.details())
    assert error_code(exc) == code
    details = exc.details() or ""
    for leak in ("Error", "Traceback", "Wire", "parsing", "cortex.mesh", "class"):
        assert leak not in details


@pytest.fixture
async def node(mesh_address, make_node):  # type: ignore[no-untyped-def]
    _, token = await sync_to_async(make_node)("node-a")
    credential = await join(mesh_address, "node-a", token)
    client = TestNode(mesh_address, "node-a", credential)
    yield client
    await client.hang_up()


def auth(client: TestNode) -> tuple[tuple[str, str], ...]:
    return (("cortex-node-id", client.node_id), ("cortex-node-credential", client.credential))


@pytest.mark.parametrize("raw", GARBAGE)
async def test_malformed_join_is_invalid_argument(mesh_address, raw):
    async with grpc.aio.insecure_channel(mesh_address) as channel:
        call = channel.unary_unary("/cortex.mesh.v1.NodeMesh/Join")  # bytes in, bytes out
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(raw, timeout=10)
    assert_invalid(caught.value)
    assert caught.value.details() == GENERIC


@pytest.mark.parametrize("raw", GARBAGE)
async def test_malformed_health_check_is_invalid_argument(mesh_address, raw):
    async with grpc.aio.insecure_channel(mesh_address) as channel:
        call = channel.unary_unary("/grpc.health.v1.Health/Check")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(raw, timeout=10)
        assert_invalid(caught.value)
        good = await call(health_pb2.HealthCheckRequest().SerializeToString(), timeout=10)
        assert health_pb2.HealthCheckResponse.FromString(good).status == 1  # SERVING


async def _connect_raw(client: TestNode, messages: list[bytes]) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(client.address) as channel:
        call = channel.stream_stream("/cortex.mesh.v1.NodeMesh/Connect")
        gate = asyncio.Event()

        async def requests():  # type: ignore[no-untyped-def]
            for raw in messages:
                yield raw
            await gate.wait()  # keep the stream open: the hub must end it

        stream = call(requests(), metadata=auth(client), timeout=20)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stream:
                pass
        gate.set()
    return caught.value


@pytest.mark.parametrize("raw", STREAM_GARBAGE)
async def test_malformed_first_message_on_connect(node, raw):
    assert_invalid(await _connect_raw(node, [raw]))


@pytest.mark.parametrize("raw", STREAM_GARBAGE)
async def test_malformed_message_mid_stream_ends_it_cleanly(node, raw):
    hello = mesh_pb2.NodeMessage(hello=mesh_pb2.Hello(version="t1", platform="linux"))
    beat = mesh_pb2.NodeMessage(heartbeat=mesh_pb2.Heartbeat(stats=mesh_pb2.NodeStats()))
    exc = await _connect_raw(node, [hello.SerializeToString(), beat.SerializeToString(), raw])
    assert_invalid(exc)
    stored = await sync_to_async(Node.objects.get)(node_id="node-a")
    assert (stored.status, stored.connection_id) == ("offline", "")


UUID0 = "00000000-0000-0000-0000-000000000000"
FIELD_CASES: dict[str, dict[str, Any]] = {
    "started-not-uuid": {"task_started": mesh_pb2.TaskStarted(task_id="not-a-uuid")},
    "started-huge": {"task_started": mesh_pb2.TaskStarted(task_id="x" * 1_000_000)},
    "output-not-uuid": {
        "task_output": mesh_pb2.TaskOutput(task_id="../x", seq=1, stream=mesh_pb2.STDOUT, data=b"x")
    },
    "result-not-uuid": {
        "task_result": mesh_pb2.TaskResult(task_id="1 OR 1=1", outcome=mesh_pb2.SUCCEEDED)
    },
    "result-bad-json": {
        "task_result": mesh_pb2.TaskResult(
            task_id=UUID0, outcome=mesh_pb2.SUCCEEDED, result_json=b"\xff"
        )
    },
    "ack-huge": {"credential_ack": mesh_pb2.CredentialAck(fingerprint="f" * 1_000_000)},
}


@pytest.mark.parametrize("case", list(FIELD_CASES))
async def test_out_of_range_fields_are_invalid_argument(node, case):
    await node.connect()
    await node.send(**FIELD_CASES[case])
    status = await node.status()
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    details = await node.call.details()
    assert "Traceback" not in details and "Error" not in details


@pytest.mark.parametrize(
    "held",
    [
        [mesh_pb2.HeldTask(task_id="z" * 1000)],
        [mesh_pb2.HeldTask(task_id=UUID0)] * 1025,
    ],
    ids=["not-uuid", "too-many"],
)
async def test_a_hello_with_absurd_held_tasks_is_refused(node, held):
    with pytest.raises((grpc.aio.AioRpcError, EOFError)):
        await node.connect(held=held)
    assert await node.call.code() == grpc.StatusCode.INVALID_ARGUMENT
    stored = await sync_to_async(Node.objects.get)(node_id="node-a")
    assert stored.connection_id == ""


async def test_a_hello_with_too_many_capabilities_is_refused(node):
    node.call = node.stub.Connect(node._requests(), metadata=auth(node))
    node.pump = asyncio.create_task(node._pump())
    caps = {f"cap{i}": True for i in range(65)}
    await node.send(hello=mesh_pb2.Hello(version="t1", capabilities=caps))
    assert await node.status() == grpc.StatusCode.INVALID_ARGUMENT


async def test_oversized_join_strings_stay_out_of_the_audit(mesh_address, make_node):
    from accounts.models import AuditEvent
    from mesh.agent.pb import mesh_pb2_grpc

    _, token = await sync_to_async(make_node)("node-b")
    async with grpc.aio.insecure_channel(mesh_address) as channel:
        await mesh_pb2_grpc.NodeMeshStub(channel).Join(
            mesh_pb2.JoinRequest(
                node_id="node-b", invite_token=token, version="v" * 500_000, platform="p" * 9999
            ),
            timeout=10,
        )
    event = await sync_to_async(AuditEvent.objects.get)(action="node.join")
    assert (len(event.details["version"]), len(event.details["platform"])) == (64, 128)
