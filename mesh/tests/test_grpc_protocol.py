"""The node protocol over real gRPC on loopback, against the in-process grpc.aio server."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import grpc
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import AuditEvent
from cortex.testing import wait_until_async
from mesh import services
from mesh.agent.pb import mesh_pb2, mesh_pb2_grpc
from mesh.models import Node, NodeCredential, NodeInvite, Task, TaskOutputChunk, TaskStatus
from mesh.selectors import task_text
from mesh.services._common import fingerprint_of
from mesh.tests.meshkit import TestNode, join

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def db_get_task(pk) -> Task:  # type: ignore[no-untyped-def]
    return Task.objects.select_related("node").get(pk=pk)


@sync_to_async
def db_node(node_id: str) -> Node:
    return Node.objects.get(node_id=node_id)


@pytest.fixture
def node_a(make_node, user, grant):  # type: ignore[no-untyped-def]
    node, token = make_node("node-a")
    grant(user, node)
    return node, token


@pytest.fixture
async def joined(mesh_address, node_a):  # type: ignore[no-untyped-def]
    _, token = node_a
    credential = await join(mesh_address, "node-a", token)
    client = TestNode(mesh_address, "node-a", credential)
    yield client
    await client.hang_up()


async def dispatch(user, node_id: str = "node-a", command: str = "echo hi", **extra) -> Task:  # type: ignore[no-untyped-def]
    node = await db_node(node_id)
    return await sync_to_async(services.task_dispatch)(
        actor=user, node=node, kind="shell", payload={"command": command}, **extra
    )


def error_code(exc: grpc.aio.AioRpcError) -> str:
    return dict(exc.trailing_metadata() or ()).get("cortex-error-code", "")


# ---------------------------------------------------------------------------- join and auth


async def test_join_connect_and_welcome(mesh_address, node_a):
    _, token = node_a
    credential = await join(mesh_address, "node-a", token)
    assert credential.startswith("cnc_")
    client = TestNode(mesh_address, "node-a", credential)
    try:
        welcome = await client.connect()
        assert welcome.heartbeat_interval_s == 0.5
        assert welcome.skills.shell is True
        assert welcome.skills.max_concurrent_tasks == 2
        assert welcome.policy.mode == mesh_pb2.SandboxPolicy.PERMISSIVE
        assert "mkfs" in welcome.policy.denied_commands
        node = await wait_until_async(
            lambda: sync_to_async(
                lambda: Node.objects.filter(node_id="node-a", status="online").first()
            )()
        )
        assert (node.version, node.hostname, node.capabilities["shell"]) == ("t1", "test", True)
        assert (
            await sync_to_async(
                lambda: AuditEvent.objects.filter(action="node.join", target_id="node-a").count()
            )()
            == 1
        )
    finally:
        await client.hang_up()
    node = await wait_until_async(
        lambda: sync_to_async(
            lambda: Node.objects.filter(node_id="node-a", status="offline").first()
        )()
    )
    assert node.offline_reason == "disconnected"


@pytest.mark.parametrize("case", ["expired", "used", "revoked", "wrong_node", "unknown"])
async def test_join_refusals(mesh_address, node_a, make_node, case):
    _, token = node_a
    node_id = "node-a"

    @sync_to_async
    def prepare() -> None:
        invite = NodeInvite.objects.get(node__node_id="node-a")
        if case == "expired":
            invite.expires_at = timezone.now() - timedelta(seconds=1)
        elif case == "used":
            invite.used_at = timezone.now()
        elif case == "revoked":
            invite.revoked_at = timezone.now()
        invite.save()
        make_node("node-b")

    await prepare()
    if case == "wrong_node":
        node_id = "node-b"
    if case == "unknown":
        token = "cni_" + "x" * 43
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await join(mesh_address, node_id, token)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    expected = {"expired": "invite_expired", "used": "invite_used", "revoked": "invite_revoked"}
    assert error_code(caught.value) == expected.get(case, "invite_invalid")
    assert await sync_to_async(NodeCredential.objects.count)() == 0
    assert not await sync_to_async(AuditEvent.objects.filter(action="node.join").exists)()


async def test_two_joins_with_one_invite_exactly_one_wins(mesh_address, node_a):
    _, token = node_a
    results = await asyncio.gather(
        join(mesh_address, "node-a", token),
        join(mesh_address, "node-a", token),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert [e.code() for e in losers] == [grpc.StatusCode.UNAUTHENTICATED]
    assert await sync_to_async(NodeCredential.objects.count)() == 1


@pytest.mark.parametrize("credential", ["", "cnc_wrong"])
async def test_connect_without_or_with_wrong_credential(joined, credential):
    with pytest.raises((grpc.aio.AioRpcError, EOFError)):
        await joined.connect(credential=credential)
    assert await joined.call.code() == grpc.StatusCode.UNAUTHENTICATED
    node = await db_node("node-a")
    assert (node.status, node.connection_id) == ("offline", "")


async def test_credential_of_another_node_is_refused(mesh_address, joined, make_node):
    await sync_to_async(make_node)("node-b")
    other = TestNode(mesh_address, "node-b", joined.credential)
    try:
        with pytest.raises((grpc.aio.AioRpcError, EOFError)):
            await other.connect()
        assert await other.call.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await other.hang_up()


# ---------------------------------------------------------------------------- tasks


async def test_dispatch_runs_on_the_node_and_output_is_stored(joined, user):
    await joined.connect()
    task = await dispatch(user, command="echo hi", timeout=7)
    assign = (await joined.recv("task_assign")).task_assign
    assert assign.task_id == str(task.pk)
    assert assign.kind == "shell"
    assert json.loads(assign.payload_json) == {"command": "echo hi"}
    assert assign.timeout_s == 7
    assert (await db_get_task(task.pk)).status == TaskStatus.DISPATCHED
    await joined.send(task_started=mesh_pb2.TaskStarted(task_id=assign.task_id))
    await joined.output(assign.task_id, 1, b"hi\n")
    assert (await joined.recv("output_ack")).output_ack.seq == 1
    await joined.result(assign.task_id, exit_code=0, last_seq=1)
    assert (await joined.recv("result_ack")).result_ack.task_id == assign.task_id
    done = await db_get_task(task.pk)
    assert (done.status, done.exit_code) == (TaskStatus.SUCCEEDED, 0)
    assert await sync_to_async(task_text)(task=done) == ("hi\n", "")


async def test_queued_tasks_are_delivered_on_connect_within_the_cap(joined, user, staff_user):
    node = await db_node("node-a")
    await sync_to_async(services.node_update)(
        actor=staff_user, node=node, data={"skill_config": {"max_concurrent_tasks": 1}}
    )
    first = await dispatch(user, command="echo 1")
    second = await dispatch(user, command="echo 2")
    await joined.connect()
    assign = (await joined.recv("task_assign")).task_assign
    assert assign.task_id == str(first.pk)
    with pytest.raises(TimeoutError):
        await joined.recv("task_assign", timeout=0.5)
    assert (await db_get_task(second.pk)).status == TaskStatus.QUEUED
    await joined.result(assign.task_id, exit_code=0)
    nxt = (await joined.recv("task_assign")).task_assign
    assert nxt.task_id == str(second.pk)


async def test_output_is_stored_in_batches_before_the_result(joined, user):
    await joined.connect()
    task = await dispatch(user)
    tid = (await joined.recv("task_assign")).task_assign.task_id
    for seq in range(1, 41):  # no waiting for acks: chunks queue up and are stored together
        await joined.output(tid, seq, b"%d\n" % seq)
    await joined.result(tid, exit_code=0, last_seq=40)
    assert (await joined.recv("result_ack")).result_ack.task_id == tid
    acks = [m.output_ack for m in joined.backlog if m.WhichOneof("body") == "output_ack"]
    assert {a.task_id for a in acks} == {tid}
    assert acks[-1].seq == 40
    assert [a.seq for a in acks] == sorted(a.seq for a in acks)
    assert len(acks) < 40  # one ack per batch, not per chunk
    done = await db_get_task(task.pk)
    assert (done.status, done.last_seq) == (TaskStatus.SUCCEEDED, 40)
    text = "".join(f"{i}\n" for i in range(1, 41))
    assert await sync_to_async(task_text)(task=done) == (text, "")


async def test_output_for_another_nodes_task_is_refused(mesh_address, joined, user, make_node):
    _, token_b = await sync_to_async(make_node)("node-b")
    credential_b = await join(mesh_address, "node-b", token_b)
    await joined.connect()
    task = await dispatch(user)
    await joined.recv("task_assign")
    other = TestNode(mesh_address, "node-b", credential_b)
    try:
        await other.connect()
        await other.output(str(task.pk), 1, b"evil")
        assert await other.status() == grpc.StatusCode.NOT_FOUND
        trailing = dict(await other.call.trailing_metadata())
        assert trailing["cortex-error-code"] == "task_not_found"
    finally:
        await other.hang_up()
    assert await sync_to_async(TaskOutputChunk.objects.count)() == 0
    assert (await db_get_task(task.pk)).status == TaskStatus.DISPATCHED


async def test_duplicate_result_is_acknowledged_and_ignored(joined, user):
    await joined.connect()
    task = await dispatch(user)
    await joined.recv("task_assign")
    await joined.result(str(task.pk), exit_code=0)
    await joined.recv("result_ack")
    await joined.result(str(task.pk), outcome=mesh_pb2.FAILED, exit_code=5)
    await joined.recv("result_ack")
    done = await db_get_task(task.pk)
    assert (done.status, done.exit_code) == (TaskStatus.SUCCEEDED, 0)


async def test_oversized_message_is_refused_and_nothing_stored(joined, user):
    await joined.connect()
    task = await dispatch(user)
    await joined.recv("task_assign")
    await joined.output(str(task.pk), 1, b"x" * (5 * 1024 * 1024))
    assert await joined.status() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await sync_to_async(TaskOutputChunk.objects.count)() == 0


async def test_cancel_a_running_task(joined, user):
    await joined.connect()
    task = await dispatch(user, command="sleep 100")
    await joined.recv("task_assign")
    await joined.send(task_started=mesh_pb2.TaskStarted(task_id=str(task.pk)))
    await wait_until_async(lambda: _status_is(task.pk, TaskStatus.RUNNING))
    await sync_to_async(services.task_cancel)(
        actor=user, task=await db_get_task(task.pk), reason="stop"
    )
    cancel = (await joined.recv("task_cancel")).task_cancel
    assert (cancel.task_id, cancel.reason) == (str(task.pk), "stop")
    await joined.result(str(task.pk), outcome=mesh_pb2.CANCELLED, exit_code=-15)
    await joined.recv("result_ack")
    assert (await db_get_task(task.pk)).status == TaskStatus.CANCELLED


async def _status_is(pk, status) -> bool:  # type: ignore[no-untyped-def]
    return (await db_get_task(pk)).status == status


async def test_hub_deadline_times_out_and_cancels(joined, user, settings):
    settings.MESH_HEARTBEAT_INTERVAL = 0.2  # margin is max(5 s, interval)
    await joined.connect()
    beating = joined.keep_beating(0.1)
    task = await dispatch(user, command="sleep 100", timeout=0.1)
    await joined.recv("task_assign")
    cancel = (await joined.recv("task_cancel", timeout=12)).task_cancel
    beating.cancel()
    assert (cancel.task_id, cancel.reason) == (str(task.pk), "deadline")
    done = await db_get_task(task.pk)
    assert (done.status, done.error_code) == (TaskStatus.TIMED_OUT, "hub_deadline")


# ---------------------------------------------------------------------------- presence


async def test_heartbeats_update_stats_and_silence_marks_offline(joined):
    await joined.connect()
    await joined.heartbeat(active=2)

    async def stats_written():  # type: ignore[no-untyped-def]
        node = await db_node("node-a")
        return node if node.stats.get("cpu_percent") == 12.5 else None

    node = await wait_until_async(stats_written, timeout=5)
    assert node.status == "busy"  # 2 active tasks of 2 allowed
    assert node.stats["memory_total"] == 1000
    # The stream stays open but the node stops beating: offline after 3 intervals.
    node = await wait_until_async(
        lambda: sync_to_async(
            lambda: Node.objects.filter(node_id="node-a", status="offline").first()
        )(),
        timeout=6,
    )
    assert node.offline_reason == "heartbeat_missed"
    await joined.heartbeat()
    await wait_until_async(
        lambda: sync_to_async(
            lambda: Node.objects.filter(node_id="node-a", status="online").first()
        )(),
        timeout=5,
    )


async def test_killed_node_loses_its_running_task_after_grace(joined, user):
    await joined.connect()
    task = await dispatch(user, command="sleep 100")
    await joined.recv("task_assign")
    await joined.send(task_started=mesh_pb2.TaskStarted(task_id=str(task.pk)))
    await wait_until_async(lambda: _status_is(task.pk, TaskStatus.RUNNING))
    await joined.hang_up()
    await asyncio.sleep(0.8)
    assert (await db_get_task(task.pk)).status == TaskStatus.RUNNING  # still within grace
    # Lost soon after the grace (1.5 s) and two heartbeat intervals (0.5 s); how soon on a busy
    # machine is the benchmark's business, so the bound here is only "not waiting for the node".
    await wait_until_async(lambda: _status_is(task.pk, TaskStatus.LOST), timeout=15)
    lost = await db_get_task(task.pk)
    assert lost.error_code == "node_disconnected"


async def test_reconnect_within_grace_resumes_without_gaps_or_duplicates(
    mesh_address, joined, user
):
    await joined.connect()
    task = await dispatch(user, command="count")
    tid = str(task.pk)
    await joined.recv("task_assign")
    await joined.send(task_started=mesh_pb2.TaskStarted(task_id=tid))
    for seq in (1, 2):
        await joined.output(tid, seq, f"{seq}\n".encode())
        await joined.recv("output_ack")
    await joined.hang_up()
    await asyncio.sleep(0.3)
    again = TestNode(mesh_address, "node-a", joined.credential)
    try:
        welcome = await again.connect(
            held=[mesh_pb2.HeldTask(task_id=tid, last_seq=4, finished=True)]
        )
        assert dict(welcome.acked_seq) == {tid: 2}
        assert list(welcome.abandon_task_ids) == []
        acks = []
        for seq in (1, 2, 3, 4):  # 1 and 2 resent on purpose: must not be stored twice
            await again.output(tid, seq, f"{seq}\n".encode())
            acks.append((await again.recv("output_ack")).output_ack.seq)
        assert acks == [2, 2, 3, 4]  # resends are acked with what the Welcome said is stored
        await again.result(tid, exit_code=0, last_seq=4)
        await again.recv("result_ack")
        await asyncio.sleep(2.5)  # past the grace period: nothing marks it lost
    finally:
        await again.hang_up()
    done = await db_get_task(tid)
    assert done.status == TaskStatus.SUCCEEDED
    assert await sync_to_async(task_text)(task=done) == ("1\n2\n3\n4\n", "")
    seqs = await sync_to_async(
        lambda: list(TaskOutputChunk.objects.filter(task_id=tid).values_list("seq", flat=True))
    )()
    assert seqs == [1, 2, 3, 4]


async def test_reconnect_without_the_task_marks_it_lost_and_abandons_unknown(
    mesh_address, joined, user
):
    await joined.connect()
    task = await dispatch(user)
    await joined.recv("task_assign")
    await joined.hang_up()
    again = TestNode(mesh_address, "node-a", joined.credential)
    try:
        ghost = "00000000-0000-0000-0000-000000000001"
        welcome = await again.connect(held=[mesh_pb2.HeldTask(task_id=ghost, last_seq=0)])
        assert list(welcome.abandon_task_ids) == [ghost]
    finally:
        await again.hang_up()
    lost = await db_get_task(task.pk)
    assert (lost.status, lost.error_code) == (TaskStatus.LOST, "node_lost_task")


async def test_credential_rotation_over_the_stream(joined, staff_user):
    await joined.connect()
    node = await db_node("node-a")
    await sync_to_async(services.credential_rotate)(actor=staff_user, node=node)
    rotation = (await joined.recv("credential_rotation")).credential_rotation
    new = rotation.credential
    assert new.startswith("cnc_") and new != joined.credential
    authenticate = sync_to_async(services.credential_authenticate)
    assert await authenticate(node_id="node-a", credential=joined.credential) is not None
    assert await authenticate(node_id="node-a", credential=new) is not None
    await joined.send(credential_ack=mesh_pb2.CredentialAck(fingerprint=fingerprint_of(new)))

    async def old_refused():  # type: ignore[no-untyped-def]
        return await authenticate(node_id="node-a", credential=joined.credential) is None

    await wait_until_async(old_refused)
    assert await authenticate(node_id="node-a", credential=new) is not None
    assert (
        await sync_to_async(
            lambda: AuditEvent.objects.filter(action="node.credential_rotate").count()
        )()
        == 1
    )


async def test_policy_change_is_pushed(joined, staff_user):
    await joined.connect()
    node = await db_node("node-a")
    await sync_to_async(services.node_update)(
        actor=staff_user,
        node=node,
        data={"sandbox_policy": {"mode": "strict", "allowed_commands": ["echo"]}},
    )
    update = (await joined.recv("policy_update")).policy_update
    assert update.policy.mode == mesh_pb2.SandboxPolicy.STRICT
    assert list(update.policy.allowed_commands) == ["echo"]


async def test_stop_tells_nodes_to_reconnect(transactional_db, mesh_settings, free_port, node_a):
    from mesh.grpc.server import serve
    from mesh.tests.meshkit import wait_serving

    address = f"127.0.0.1:{free_port()}"
    stop = asyncio.Event()
    server = asyncio.create_task(serve(address, stop_event=stop, grace=1.0))
    await wait_serving(address)
    credential = await join(address, "node-a", node_a[1])
    client = TestNode(address, "node-a", credential)
    try:
        await client.connect()
        stop.set()
        reconnect = (await client.recv("reconnect")).reconnect
        assert 0 < reconnect.after_s <= 3
    finally:
        await client.hang_up()
        await asyncio.wait_for(server, timeout=20)
    node = await db_node("node-a")
    assert (node.status, node.offline_reason) == ("offline", "hub_stopping")


async def test_health_and_join_need_no_credential(mesh_address):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(mesh_address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="cortex.mesh.v1.NodeMesh"), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await mesh_pb2_grpc.NodeMeshStub(channel).Join(
                mesh_pb2.JoinRequest(node_id="nobody", invite_token="cni_x"), timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
