"""The embedded default (`manage.py serve`): HTTP and gRPC in one process, in-memory layer."""

from __future__ import annotations

import asyncio

import pytest

from mesh.tests.meshkit import TestNode, join, wait_serving
from mesh.tests.test_cross_process import SETUP, http_call

pytestmark = pytest.mark.slow


async def test_serve_runs_dispatch_end_to_end_in_one_process(live_hub):
    output = live_hub.manage("shell", "-v", "0", "-c", "NODE_ID='solo'\n" + SETUP)
    invite = output.strip().splitlines()[-1]
    alice = live_hub.manage("create_api_token", "alice@example.com").strip()
    await wait_serving(live_hub.grpc_address)
    credential = await join(live_hub.grpc_address, "solo", invite)
    node = TestNode(live_hub.grpc_address, "solo", credential)
    try:
        await node.connect()
        status, created = await asyncio.to_thread(
            http_call,
            live_hub.http_url,
            "POST",
            "/api/v1/nodes/solo/tasks/",
            alice,
            {"command": "echo hi"},
        )
        assert status == 201, created
        assert await node.run_echo(timeout=20) == created["id"]
        status, task = await asyncio.to_thread(
            http_call, live_hub.http_url, "GET", f"/api/v1/tasks/{created['id']}/?wait=20", alice
        )
        assert (status, task["status"], task["stdout"]) == (200, "succeeded", "hi\n")
    except BaseException:
        print(live_hub.log())  # noqa: T201  # the hub's log explains a failure
        raise
    finally:
        await node.hang_up()
