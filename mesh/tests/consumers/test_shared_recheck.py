"""Re-checks run from one timer per loop and share answers; each socket gets its own verdict."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from mesh.tests.consumers.conftest import closed_code, communicator, login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_lost_grant_closes_every_socket_of_that_user_and_no_other(
    user, staff_user, make_node, grant, fast_recheck
):
    node, _ = await database_sync_to_async(make_node)("node-a")
    group = await database_sync_to_async(grant)(user, node)
    mine = [communicator("/ws/nodes/node-a/", await login_cookie(user)) for _ in range(3)]
    theirs = communicator("/ws/nodes/node-a/", await login_cookie(staff_user))
    for ws in [*mine, theirs]:
        assert (await ws.connect(timeout=5))[0] is True
        assert (await ws.receive_json_from(timeout=5))["type"] == "node.snapshot"

    await database_sync_to_async(user.groups.remove)(group)
    for ws in mine:
        assert await closed_code(ws, timeout=5) == 4403
        await ws.disconnect()
    assert await theirs.receive_nothing(timeout=0.5)  # still open, still re-checked
    await theirs.send_json_to({"type": "ping"})
    assert (await theirs.receive_json_from(timeout=5))["error"]["code"] == "unsupported_frame"
    await theirs.disconnect()


async def test_a_socket_opened_later_with_a_shorter_interval_is_not_kept_waiting(
    user, make_node, grant, settings
):
    node, _ = await database_sync_to_async(make_node)("node-a")
    group = await database_sync_to_async(grant)(user, node)
    cookie = await login_cookie(user)
    settings.WS_RECHECK_SECONDS = 30
    slow = communicator("/ws/nodes/node-a/", cookie)
    assert (await slow.connect(timeout=5))[0] is True
    await slow.receive_json_from(timeout=5)
    settings.WS_RECHECK_SECONDS = 0.2
    fast = communicator("/ws/nodes/node-a/", cookie)
    assert (await fast.connect(timeout=5))[0] is True
    await fast.receive_json_from(timeout=5)

    await database_sync_to_async(user.groups.remove)(group)
    assert await closed_code(fast, timeout=5) == 4403
    await fast.disconnect()
    await slow.disconnect()
