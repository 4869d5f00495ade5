"""Refused joins and bad node credentials are audited, aggregated so a flood stays a few rows,
and the presented secret never reaches the audit log."""

from __future__ import annotations

import json
from datetime import timedelta

import grpc
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import AuditEvent
from mesh.models import NodeInvite, RefusalCount
from mesh.services.refusals import refusal_record
from mesh.tests.meshkit import TestNode, join

pytestmark = pytest.mark.django_db(transaction=True)


def milestones(count: int) -> list[int]:
    return [m for m in (1, 10, 100, 1000, 10_000) if m <= count]


@sync_to_async
def audit_rows(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


@sync_to_async
def counters(action: str) -> list[RefusalCount]:
    return list(RefusalCount.objects.filter(action=action).order_by("window_start"))


def assert_no_secret(rows: list[AuditEvent], secret: str) -> None:
    for row in rows:
        text = json.dumps([row.action, row.target_id, row.actor_label, row.user_agent, row.details])
        assert secret not in text
        assert secret[4:12] not in text  # not even a slice of it


async def refused_connect(address: str, node_id: str, credential: str) -> None:
    client = TestNode(address, node_id, credential)
    try:
        with pytest.raises((grpc.aio.AioRpcError, EOFError)):
            await client.connect()
        assert await client.call.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await client.hang_up()


@pytest.fixture
async def joined(mesh_address, make_node):  # type: ignore[no-untyped-def]
    _, token = await sync_to_async(make_node)("node-a")
    return await join(mesh_address, "node-a", token)


async def test_a_wrong_credential_on_connect_is_audited(mesh_address, joined):
    wrong = "cnc_" + "W" * 43
    await refused_connect(mesh_address, "node-a", wrong)
    [row] = await audit_rows("node.credential_refused")
    assert (row.target_type, row.target_id, row.source) == ("node", "node-a", "grpc")
    assert row.client_ip == "127.0.0.1"
    assert row.details["reason"] == "credential_invalid"
    assert row.details["count"] == 1
    assert len(row.details["presented"]) == 8
    assert_no_secret([row], wrong)
    assert_no_secret([row], joined)  # nor the real one


async def test_a_flood_of_wrong_credentials_stays_a_few_rows_with_its_count(mesh_address, joined):
    wrong = "cnc_" + "F" * 43
    for _ in range(200):
        await refused_connect(mesh_address, "node-a", wrong)
    windows = await counters("node.credential_refused")
    assert sum(w.count for w in windows) == 200
    assert {(w.key, w.reason) for w in windows} == {("node-a", "credential_invalid")}
    rows = await audit_rows("node.credential_refused")
    expected = [m for w in windows for m in milestones(w.count)]
    assert [r.details["count"] for r in rows] == expected
    assert len(rows) <= 6  # 1, 10, 100 in each of at most two windows
    assert_no_secret(rows, wrong)


async def test_random_node_ids_share_one_key(mesh_address, joined):
    for i in range(30):
        await refused_connect(mesh_address, f"guess-{i}", "cnc_guess")
    await refused_connect(mesh_address, "node-a", "")
    windows = await counters("node.credential_refused")
    by_key = {}
    for w in windows:
        by_key[(w.key, w.reason)] = by_key.get((w.key, w.reason), 0) + w.count
    assert by_key == {("*", "node_unknown"): 30, ("node-a", "credential_missing"): 1}
    rows = await audit_rows("node.credential_refused")
    assert len(rows) <= 6


@pytest.mark.parametrize("case", ["unknown", "used", "expired", "wrong_node"])
async def test_refused_joins_are_audited(mesh_address, make_node, case):
    _, token = await sync_to_async(make_node)("node-a")
    await sync_to_async(make_node)("node-b")
    node_id = "node-a"

    @sync_to_async
    def prepare() -> None:
        invite = NodeInvite.objects.get(node__node_id="node-a")
        if case == "used":
            invite.used_at = timezone.now()
        elif case == "expired":
            invite.expires_at = timezone.now() - timedelta(seconds=1)
        invite.save()

    await prepare()
    if case == "unknown":
        token = "cni_" + "u" * 43
    if case == "wrong_node":
        node_id = "node-b"
    for _ in range(12):
        with pytest.raises(grpc.aio.AioRpcError):
            await join(mesh_address, node_id, token)
    reason = {"used": "invite_used", "expired": "invite_expired"}.get(case, "invite_invalid")
    windows = await counters("node.join_refused")
    assert sum(w.count for w in windows) == 12
    assert {(w.key, w.reason) for w in windows} == {(node_id, reason)}
    rows = await audit_rows("node.join_refused")
    assert [r.details["count"] for r in rows] == [m for w in windows for m in milestones(w.count)]
    assert rows[0].target_id == node_id
    assert_no_secret(rows, token)


async def test_oversized_ids_are_truncated_and_collapse(transactional_db):
    await sync_to_async(refusal_record)(
        action="node.join_refused", node_id="x" * 100_000, reason="invite_invalid", secret="s"
    )
    [row] = await audit_rows("node.join_refused")
    assert (row.target_id, len(row.details["node_id"])) == ("*", 63)
