"""mesh/services/workspace.py against a node on real gRPC: each call is one files task whose
answer (entries, bytes, a refusal) the service returns or maps to a stable error."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from cortex.errors import NotFound, ValidationFailed
from mesh.agent.pb import mesh_pb2
from mesh.models import Node, Task
from mesh.services.workspace import (
    WorkspaceNodeOffline,
    WorkspacePathRefused,
    WorkspaceTaskFailed,
    workspace_delete,
    workspace_list,
    workspace_read,
)
from mesh.tests.meshkit import TestNode, join

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def granted(user, make_node, grant):  # type: ignore[no-untyped-def]
    node, token = make_node("ws-1")
    grant(user, node)
    return node, token


async def _online(address: str, token: str) -> tuple[TestNode, Node]:
    client = TestNode(address, "ws-1", await join(address, "ws-1", token))
    await client.connect()
    return client, await Node.objects.aget(node_id="ws-1")


async def _answer(
    call: Callable[[], Any],
    client: TestNode,
    answer: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    **result: Any,
) -> tuple[dict[str, Any], Any]:
    """Run the blocking service in a thread while the node answers its one task."""
    running = asyncio.ensure_future(sync_to_async(call, thread_sensitive=False)())
    assign = (await client.recv("task_assign", timeout=30)).task_assign
    payload = json.loads(assign.payload_json)
    await client.send(task_started=mesh_pb2.TaskStarted(task_id=assign.task_id))
    await client.result(assign.task_id, **result)
    await client.recv("result_ack", timeout=30)
    return payload, await asyncio.wait_for(running, timeout=60)


async def test_workspace_list_read_delete_on_a_live_node(mesh_address, granted, user) -> None:  # type: ignore[no-untyped-def]
    client, node = await _online(mesh_address, granted[1])
    try:
        entries = {"entries": [{"name": "a.txt", "type": "file", "size": 2}]}
        payload, listed = await _answer(
            lambda: workspace_list(actor=user, node=node),
            client,
            outcome=mesh_pb2.SUCCEEDED,
            result_json=json.dumps(entries).encode(),
        )
        assert payload["action"] == "list" and "path" not in payload
        assert listed == entries

        content = base64.b64encode(b"hi").decode()
        payload, data = await _answer(
            lambda: workspace_read(actor=user, node=node, path="a.txt"),
            client,
            outcome=mesh_pb2.SUCCEEDED,
            result_json=json.dumps({"content": content}).encode(),
        )
        assert (payload["action"], payload["path"], payload["encoding"]) == (
            "read",
            "a.txt",
            "base64",
        )
        assert data == b"hi"

        payload, deleted = await _answer(
            lambda: workspace_delete(actor=user, node=node, path="a.txt"),
            client,
            outcome=mesh_pb2.SUCCEEDED,
            result_json=b"{}",
        )
        assert (payload["action"], payload["path"], deleted) == ("delete", "a.txt", None)
    finally:
        await client.hang_up()


async def test_workspace_refusals_of_the_node_keep_their_code(mesh_address, granted, user) -> None:  # type: ignore[no-untyped-def]
    client, node = await _online(mesh_address, granted[1])
    try:
        with pytest.raises(NotFound):
            await _answer(
                lambda: workspace_read(actor=user, node=node, path="gone.txt"),
                client,
                outcome=mesh_pb2.FAILED,
                error_code="not_found",
                error_message="No such file.",
            )
        # The node's jail refusing a path (a link out, say) is the same 400 the hub's own path
        # rule gives, with the jail's code.
        with pytest.raises(WorkspacePathRefused) as outside:
            await _answer(
                lambda: workspace_delete(actor=user, node=node, path="link-out/passwd"),
                client,
                outcome=mesh_pb2.FAILED,
                error_code="path_outside_workspace",
                error_message="Outside the workspace.",
            )
        assert outside.value.code == "path_outside_workspace"
        with pytest.raises(WorkspaceTaskFailed) as odd:  # a code we do not recognise
            await _answer(
                lambda: workspace_list(actor=user, node=node, path="x"),
                client,
                outcome=mesh_pb2.FAILED,
                error_code="Weird Code!",
                error_message="?",
            )
        assert odd.value.code == "files_failed"
        with pytest.raises(WorkspaceTaskFailed) as garbled:
            await _answer(
                lambda: workspace_read(actor=user, node=node, path="b.bin"),
                client,
                outcome=mesh_pb2.SUCCEEDED,
                result_json=json.dumps({"content": "not base64!"}).encode(),
            )
        assert garbled.value.code == "files_failed"
    finally:
        await client.hang_up()


async def test_workspace_refuses_before_any_task(granted, user, make_user) -> None:  # type: ignore[no-untyped-def]
    node = granted[0]
    stranger = await sync_to_async(make_user)("stranger@example.com")
    # Outside the grants the node does not exist, online or not.
    with pytest.raises(NotFound):
        await sync_to_async(workspace_list)(actor=stranger, node=node)
    # Offline: nothing is queued for later.
    with pytest.raises(WorkspaceNodeOffline) as offline:
        await sync_to_async(workspace_list)(actor=user, node=node)
    assert offline.value.code == "node_offline"
    bad: Any
    for bad in ("", " ", "a\x00b", "a" * 4097, None):
        with pytest.raises(ValidationFailed) as caught:
            await sync_to_async(workspace_read)(actor=user, node=node, path=bad)
        assert list(caught.value.fields or {}) == ["path"]
    assert await Task.objects.acount() == 0


async def test_workspace_outside_grants_is_not_found(mesh_address, granted, make_user) -> None:  # type: ignore[no-untyped-def]
    client, node = await _online(mesh_address, granted[1])
    try:
        stranger = await sync_to_async(make_user)("stranger@example.com")
        with pytest.raises(NotFound):
            await sync_to_async(workspace_list)(actor=stranger, node=node)
        assert await Task.objects.acount() == 0
    finally:
        await client.hang_up()
