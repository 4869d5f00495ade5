"""The owner hears about a run on `/ws/me/` (`agent.run`); nobody else does."""

from __future__ import annotations

import pytest

from agents.services.notify import run_notify
from mesh.tests.consumers.conftest import communicator, login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def test_agent_run_frames_reach_the_owner_only(user, make_user):
    from channels.db import database_sync_to_async

    other = await database_sync_to_async(make_user)("eve@example.com")
    mine = communicator("/ws/me/", await login_cookie(user))
    theirs = communicator("/ws/me/", await login_cookie(other))
    try:
        for ws in (mine, theirs):
            assert (await ws.connect(timeout=5))[0] is True
            assert (await ws.receive_json_from(timeout=5))["type"] == "nodes.snapshot"
        approval = {"approval_id": 7, "tool": "mesh_terminal", "node_id": "box"}
        await run_notify(
            owner_id=user.pk,
            agent_id=3,
            run_id=9,
            status="awaiting_approval",
            session_id=11,
            approval=approval,
        )
        frame = await mine.receive_json_from(timeout=5)
        assert {k: v for k, v in frame.items() if k != "seq"} == {
            "type": "agent.run",
            "agent_id": 3,
            "run_id": 9,
            "status": "awaiting_approval",
            "session_id": 11,
            "approval": approval,
        }
        assert await theirs.receive_nothing(timeout=0.5)
    finally:
        await mine.disconnect()
        await theirs.disconnect()
