"""`/ws/nodes/{node_id}/` through the real ASGI application, router, origin check and auth."""

from __future__ import annotations

import time
from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts.models import AuditEvent
from mesh import services
from mesh.models import Task, TaskOutputChunk
from mesh.tests.consumers.conftest import (
    closed_code,
    communicator,
    frames_until,
    login_cookie,
    refused_with,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def watched(user, make_node, grant):  # type: ignore[no-untyped-def]
    node, _ = make_node("node-a")
    group = grant(user, node)
    return node, group


def _queue_task(actor: Any, node: Any, command: str = "echo hi") -> Task:
    """A task handed to the node (the node says hello, its stream holder claims the task)."""
    task = services.task_dispatch(
        actor=actor, node=node, kind="shell", payload={"command": command}
    )
    services.node_hello(node_id=node.node_id, connection_id="conn-1")
    services.tasks_claim_for_delivery(node_id=node.node_id, connection_id="conn-1")
    task.refresh_from_db()
    return task


async def test_refused_without_user_or_grant_or_origin(
    user, make_user, make_node, watched, settings
):
    settings.AUDIT_REFUSAL_WINDOW_SECONDS = 86400  # one audit window for the whole test
    ws = communicator("/ws/nodes/node-a/")
    assert await refused_with(ws) == 4401

    stranger = await database_sync_to_async(make_user)("eve@example.com")
    cookie = await login_cookie(stranger)
    for path in ("/ws/nodes/node-a/", "/ws/nodes/no-such-node/"):
        ws = communicator(path, cookie)
        assert await refused_with(ws) == 4403

    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/", cookie, origin=b"http://evil.example")
    assert await refused_with(ws) == 4403
    ws = communicator("/ws/nodes/node-a/", cookie, origin=None)
    assert await refused_with(ws) == 4403

    # Each refusal is audited once per actor and reason a minute (no query string, no ticket).
    rows = await database_sync_to_async(
        lambda: sorted(
            (e.details["reason"], e.details["close_code"], e.actor_label, e.target_id)
            for e in AuditEvent.objects.filter(action="ws.connect.refused")
        )
    )()
    assert rows == [
        ("bad_origin", 4403, "", "/ws/nodes/node-a/"),
        ("no_access", 4403, "eve@example.com", "/ws/nodes/node-a/"),
        ("not_signed_in", 4401, "", "/ws/nodes/node-a/"),
    ]


async def test_snapshot_then_live_frames(user, staff_user, watched, channel_layer_kind):
    from channels.layers import get_channel_layer

    layer = "RedisPubSubChannelLayer" if channel_layer_kind == "redis" else "InMemoryChannelLayer"
    assert type(get_channel_layer()).__name__ == layer
    node, _ = watched
    task = await database_sync_to_async(_queue_task)(staff_user, node)
    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/", cookie)
    assert await ws.connect(timeout=5) == (True, None)
    snapshot = await ws.receive_json_from(timeout=5)
    assert snapshot["type"] == "node.snapshot"
    assert snapshot["can_run"] is True
    assert snapshot["node"]["node_id"] == "node-a"
    assert snapshot["node"]["status"] == "online"
    assert [t["task_id"] for t in snapshot["open_tasks"]] == [str(task.pk)]
    assert snapshot["open_tasks"][0]["last_seq"] == 0
    assert snapshot["open_tasks"][0]["command"] == "echo hi"

    await database_sync_to_async(services.output_append)(
        node_id="node-a", task_id=str(task.pk), seq=1, stream="stdout", data=b"hello\n"
    )
    frame = await ws.receive_json_from(timeout=5)
    assert frame == {
        "type": "task.output",
        "seq": 1,
        "first_seq": 1,
        "task_id": str(task.pk),
        "stream": "stdout",
        "data": "hello\n",
        "truncated": False,
        "skipped": 0,
    }
    await database_sync_to_async(services.task_finish)(
        node_id="node-a", task_id=str(task.pk), outcome="SUCCEEDED", exit_code=0
    )
    frame = await ws.receive_json_from(timeout=5)
    assert (frame["type"], frame["task_id"], frame["status"], frame["exit_code"]) == (
        "task.finished",
        str(task.pk),
        "succeeded",
        0,
    )
    await ws.disconnect()


async def test_after_seq_replays_stored_output_and_gaps_are_filled(user, staff_user, watched):
    node, _ = watched
    task = await database_sync_to_async(_queue_task)(staff_user, node)
    tid = str(task.pk)
    for seq in (1, 2, 3):
        await database_sync_to_async(services.output_append)(
            node_id="node-a", task_id=tid, seq=seq, stream="stdout", data=f"line {seq}\n".encode()
        )
    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/?after_seq=1", cookie)
    assert (await ws.connect(timeout=5))[0] is True
    assert (await ws.receive_json_from(timeout=5))["type"] == "node.snapshot"
    replayed = [await ws.receive_json_from(timeout=5) for _ in range(2)]
    assert [(f["seq"], f["data"], f["replayed"]) for f in replayed] == [
        (2, "line 2\n", True),
        (3, "line 3\n", True),
    ]

    # Chunks 4 and 5 are stored but their live frames are lost (as a full layer would drop them).
    @database_sync_to_async
    def store_silently() -> None:
        for seq in (4, 5):
            TaskOutputChunk.objects.create(
                task=task, seq=seq, stream="stderr", data=f"e{seq}".encode(), offset=0, size=2
            )
        Task.objects.filter(pk=task.pk).update(last_seq=5)

    await store_silently()
    await database_sync_to_async(services.output_append)(
        node_id="node-a", task_id=tid, seq=6, stream="stdout", data=b"six"
    )
    frames = [await ws.receive_json_from(timeout=5) for _ in range(3)]
    assert [(f["seq"], f["stream"], f["data"]) for f in frames] == [
        (4, "stderr", "e4"),
        (5, "stderr", "e5"),
        (6, "stdout", "six"),
    ]
    assert [f.get("replayed", False) for f in frames] == [True, True, False]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_slow_client_gets_one_resync_instead_of_a_growing_queue(
    user, staff_user, watched, settings
):
    settings.WS_QUEUE_FRAMES = 3
    node, _ = watched
    task = await database_sync_to_async(_queue_task)(staff_user, node)
    for seq in range(1, 11):
        await database_sync_to_async(services.output_append)(
            node_id="node-a", task_id=str(task.pk), seq=seq, stream="stdout", data=b"x"
        )
    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/?after_seq=0", cookie)
    assert (await ws.connect(timeout=5))[0] is True
    # snapshot + 10 chunks into a queue of 3: the queue is dropped each time it would overflow.
    first = await ws.receive_json_from(timeout=5)
    second = await ws.receive_json_from(timeout=5)
    assert first["type"] == "resync"
    assert (second["type"], second["seq"]) == ("task.output", 10)
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_run_and_cancel_from_the_console_are_audited(user, watched):
    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/", cookie)
    assert (await ws.connect(timeout=5))[0] is True
    await ws.receive_json_from(timeout=5)
    await ws.send_json_to({"type": "run", "seq": 7, "command": "echo hello", "timeout": 20})
    accepted = await ws.receive_json_from(timeout=5)
    assert (accepted["type"], accepted["status"], accepted["reply_to"]) == (
        "task.accepted",
        "queued",
        7,
    )

    @database_sync_to_async
    def audit() -> list[tuple[str, str, str, dict[str, Any]]]:
        return [
            (e.action, e.source, e.target_id, e.details)
            for e in AuditEvent.objects.filter(action__startswith="task.").order_by("id")
        ]

    task = await database_sync_to_async(Task.objects.get)()
    assert (str(task.pk), task.payload, task.timeout, task.requested_by_id) == (
        accepted["task_id"],
        {"command": "echo hello"},
        20.0,
        user.pk,
    )
    [(action, source, target, details)] = await audit()
    assert (action, source, target, details["command"]) == (
        "task.dispatch",
        "console",
        accepted["task_id"],
        "echo hello",
    )

    await ws.send_json_to({"type": "cancel", "task_id": accepted["task_id"]})
    frames = await frames_until(ws, "task.cancel_requested")
    assert (frames[-1]["task_id"], frames[-1]["status"]) == (accepted["task_id"], "cancelled")
    assert [a[:2] for a in await audit()] == [
        ("task.dispatch", "console"),
        ("task.cancel", "console"),
    ]
    await ws.disconnect()


async def test_bad_frames_and_refused_commands_answer_error_frames(user, watched):
    node, _ = watched

    @database_sync_to_async
    def strict() -> None:
        node.sandbox_policy = {**node.sandbox_policy, "mode": "strict", "allowed_commands": ["ls"]}
        node.save(update_fields=["sandbox_policy"])

    await strict()
    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/", cookie)
    assert (await ws.connect(timeout=5))[0] is True
    await ws.receive_json_from(timeout=5)

    await ws.send_to(text_data="not json")
    frame = await ws.receive_json_from(timeout=5)
    assert frame["type"] == "error"
    assert frame["error"] == {"code": "invalid_frame", "message": "The frame is not JSON."}

    for raw, message in (
        ("[]", "A frame is an object with a string `type`."),
        ('{"type": "run", "seq": true}', "`seq` must be an integer."),
        ("{" + " " * 70000 + "}", "The frame is too large."),
    ):
        await ws.send_to(text_data=raw)
        frame = await ws.receive_json_from(timeout=5)
        assert frame["error"]["message"] == message
    await ws.send_to(bytes_data=b"\x00")
    frame = await ws.receive_json_from(timeout=5)
    assert frame["error"] == {"code": "invalid_frame", "message": "Frames are JSON text."}

    await ws.send_json_to({"type": "sudo", "seq": 1})
    frame = await ws.receive_json_from(timeout=5)
    assert (frame["error"]["code"], frame["reply_to"]) == ("unsupported_frame", 1)

    await ws.send_json_to({"type": "run", "seq": 2, "command": "rm -rf /"})
    frame = await ws.receive_json_from(timeout=5)
    assert (frame["type"], frame["error"]["code"], frame["reply_to"]) == (
        "error",
        "command_not_allowed",
        2,
    )
    await ws.send_json_to({"type": "run", "seq": 3, "command": 5})
    frame = await ws.receive_json_from(timeout=5)
    assert frame["error"]["code"] == "invalid_input"
    assert frame["error"]["fields"] == {"command": ["A command string is required."]}
    await ws.send_json_to({"type": "cancel", "seq": 4, "task_id": "nope"})
    frame = await ws.receive_json_from(timeout=5)
    assert frame["error"]["code"] == "task_not_found"

    assert await database_sync_to_async(Task.objects.count)() == 0
    assert (
        await database_sync_to_async(AuditEvent.objects.filter(action="task.dispatch").count)() == 0
    )
    refused = await database_sync_to_async(
        lambda: [
            (e.source, e.target_id, e.details["command"], e.details["reason"])
            for e in AuditEvent.objects.filter(action="task.refused")
        ]
    )()
    assert refused == [("console", "node-a", "rm -rf /", "command_not_allowed")]
    await ws.disconnect()


async def test_revoking_the_grant_closes_the_socket_with_4403(
    user, staff_user, watched, channel_layer_kind
):
    node, group = watched
    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/", cookie)
    assert (await ws.connect(timeout=5))[0] is True
    await ws.receive_json_from(timeout=5)
    started = time.monotonic()
    await database_sync_to_async(services.node_revoke)(actor=staff_user, node=node, group=group)
    assert await closed_code(ws, timeout=5) == 4403
    assert time.monotonic() - started < 5
    await ws.disconnect()


async def test_leaving_the_group_closes_within_five_seconds(user, watched):
    _, group = watched
    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/", cookie)
    assert (await ws.connect(timeout=5))[0] is True
    await ws.receive_json_from(timeout=5)
    await database_sync_to_async(user.groups.remove)(group)  # no event: the periodic re-check
    assert await closed_code(ws, timeout=5) == 4403
    await ws.disconnect()


async def test_signing_out_closes_with_4401(user, watched, fast_recheck):
    from django.contrib.sessions.models import Session

    cookie = await login_cookie(user)
    ws = communicator("/ws/nodes/node-a/", cookie)
    assert (await ws.connect(timeout=5))[0] is True
    await ws.receive_json_from(timeout=5)
    key = cookie.decode().split("=", 1)[1]
    await database_sync_to_async(Session.objects.filter(session_key=key).delete)()
    assert await closed_code(ws, timeout=5) == 4401
    await ws.disconnect()


async def test_ticket_socket_closes_with_4401_when_the_user_is_deactivated(
    user, staff_user, watched, fast_recheck
):
    from accounts.services import user_deactivate, ws_ticket_issue

    ticket = await database_sync_to_async(ws_ticket_issue)(user=user)
    ws = communicator(f"/ws/nodes/node-a/?ticket={ticket}")
    assert (await ws.connect(timeout=5))[0] is True
    assert (await ws.receive_json_from(timeout=5))["type"] == "node.snapshot"
    await database_sync_to_async(user_deactivate)(actor=staff_user, user=user)
    assert await closed_code(ws, timeout=5) == 4401
    await ws.disconnect()

    again = communicator(f"/ws/nodes/node-a/?ticket={ticket}")
    assert await refused_with(again) == 4401
