"""`/ws/me/`: status and stats of every node the user may see, and nothing else."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from mesh import services
from mesh.tests.consumers.conftest import communicator, frames_until, login_cookie, refused_with

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_is_refused():
    ws = communicator("/ws/me/")
    assert await refused_with(ws) == 4401


async def test_snapshot_live_stats_and_grant_changes(
    user, staff_user, make_node, grant, fast_recheck
):
    mine, _ = await database_sync_to_async(make_node)("mine")
    other, _ = await database_sync_to_async(make_node)("other")
    group = await database_sync_to_async(grant)(user, mine)
    cookie = await login_cookie(user)
    ws = communicator("/ws/me/", cookie)
    assert (await ws.connect(timeout=5))[0] is True
    snapshot = await ws.receive_json_from(timeout=5)
    assert snapshot["type"] == "nodes.snapshot"
    assert [n["node_id"] for n in snapshot["nodes"]] == ["mine"]

    @database_sync_to_async
    def beat() -> None:
        for node_id in ("mine", "other"):
            services.node_hello(node_id=node_id, connection_id=f"c-{node_id}")
        services.heartbeat_flush(
            beats={
                "other": ("c-other", {"cpu_percent": 99.0}),
                "mine": ("c-mine", {"cpu_percent": 12.5, "memory_percent": 40.0}),
            }
        )

    await beat()
    frames = await frames_until(ws, "nodes.stats")
    assert {f["node_id"] for f in frames if "node_id" in f} == {"mine"}  # status frames
    assert frames[-1]["nodes"] == [
        {
            "node_id": "mine",
            "status": "online",
            "stats": {"cpu_percent": 12.5, "memory_percent": 40.0},
        }
    ]

    await database_sync_to_async(services.node_revoke)(actor=staff_user, node=mine, group=group)
    removed = await frames_until(ws, "node.removed")
    assert removed[-1]["node_id"] == "mine"
    await database_sync_to_async(grant)(user, other, "ops2")
    added = await frames_until(ws, "node.added")
    assert (added[-1]["node"]["node_id"], added[-1]["node"]["status"]) == ("other", "online")
    await ws.disconnect()


async def test_a_flood_of_refused_connects_is_one_audit_row_a_window(settings):
    from accounts.models import AuditEvent, AuditRefusalWindow

    settings.AUDIT_REFUSAL_WINDOW_SECONDS = 86400  # one window for the whole test

    for _ in range(20):
        assert await refused_with(communicator("/ws/me/?ticket=not-a-ticket")) == 4401

    def _read():  # type: ignore[no-untyped-def]
        rows = list(AuditEvent.objects.filter(action="ws.connect.refused").order_by("id"))
        windows = list(AuditRefusalWindow.objects.filter(action="ws.connect.refused"))
        return rows, windows

    rows, windows = await database_sync_to_async(_read)()
    assert 1 <= len(rows) == len(windows) <= 2  # two only if the test ran across midnight
    assert sum(w.count for w in windows) == 20
    assert rows[0].details == {
        "path": "/ws/me/",
        "close_code": 4401,
        "reason": "not_signed_in",
        "aggregated_per_seconds": 86400,
    }
    assert "not-a-ticket" not in str([(r.details, r.target_id) for r in rows])
