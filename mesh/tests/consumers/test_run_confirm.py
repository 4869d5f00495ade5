"""`run` frames on `/ws/nodes/{node_id}/`: a sensitive command needs `"confirm": true`."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from accounts.models import AuditEvent
from mesh.models import Task
from mesh.tests.consumers.conftest import communicator, login_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def watched(user, make_node, grant):  # type: ignore[no-untyped-def]
    node, _ = make_node("node-a")
    grant(user, node)
    return node


async def test_sensitive_run_needs_confirm_then_runs_confirmed(user, watched):
    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/", cookie)
    assert (await ws.connect(timeout=5))[0] is True
    await ws.receive_json_from(timeout=5)  # node.snapshot

    for seq, extra in ((1, {}), (2, {"confirm": False})):
        await ws.send_json_to({"type": "run", "seq": seq, "command": "rm -rf build", **extra})
        frame = await ws.receive_json_from(timeout=5)
        assert frame["type"] == "error"
        assert frame["reply_to"] == seq
        assert frame["error"] == {
            "code": "confirmation_required",
            "message": "'rm' is sensitive on this node and needs confirmation: "
            'send the request again with "confirm": true to run it.',
            "fields": {"confirm": ["Required: 'rm' is sensitive on this node."]},
        }
    for seq, confirm in ((3, "yes"), (4, 1)):
        await ws.send_json_to({"type": "run", "seq": seq, "command": "rm x", "confirm": confirm})
        frame = await ws.receive_json_from(timeout=5)
        assert (frame["error"]["code"], frame["error"]["fields"]) == (
            "invalid_input",
            {"confirm": ["Must be true or false."]},
        )
    assert await database_sync_to_async(Task.objects.count)() == 0
    assert not await database_sync_to_async(
        AuditEvent.objects.filter(action="task.dispatch").exists
    )()

    await ws.send_json_to(
        {
            "type": "run",
            "seq": 5,
            "command": "rm -rf build",
            "confirm": True,
            "delivery_timeout": 45,
        }
    )
    accepted = await ws.receive_json_from(timeout=5)
    assert (accepted["type"], accepted["status"], accepted["reply_to"]) == (
        "task.accepted",
        "queued",
        5,
    )
    task = await database_sync_to_async(Task.objects.get)()
    assert str(task.pk) == accepted["task_id"]
    assert task.payload == {"command": "rm -rf build", "confirmed": True}
    assert 44 < (task.deliver_by - task.created_at).total_seconds() < 46

    await ws.send_json_to({"type": "run", "seq": 6, "command": "ls", "delivery_timeout": 0})
    frame = await ws.receive_json_from(timeout=5)
    assert (frame["error"]["code"], list(frame["error"]["fields"])) == (
        "invalid_input",
        ["delivery_timeout"],
    )
    await ws.disconnect()
