"""REST and services: dispatch, refusals, cancel, output, wait."""

from __future__ import annotations

import threading
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import DatabaseError, connection

from accounts.models import AuditEvent
from mesh import events, services
from mesh.models import Task, TaskStatus
from mesh.services.output import output_append

pytestmark = pytest.mark.django_db


class Doorbells:
    """A real listener on a node's doorbell group (in-memory layer)."""

    def __init__(self, node_id: str) -> None:
        self.layer = get_channel_layer()
        self.group = events.group_name(events.NODE_GROUP, node_id=node_id)
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(self.group, self.channel)

    def drain(self) -> list[dict]:
        async def _drain() -> list[dict]:
            import asyncio

            got = []
            while True:
                try:
                    got.append(await asyncio.wait_for(self.layer.receive(self.channel), 0.05))
                except TimeoutError:
                    return got

        return async_to_sync(_drain)()


@pytest.fixture
def granted_node(user, make_node, grant):  # type: ignore[no-untyped-def]
    node, _ = make_node("n1")
    grant(user, node)
    return node


def test_user_with_grant_dispatches_and_audit_has_the_command(
    user_client, user, granted_node, django_capture_on_commit_callbacks
):
    bells = Doorbells("n1")
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(
            "/api/v1/nodes/n1/tasks/", {"command": "echo hi", "timeout": 12}, format="json"
        )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    task = Task.objects.get(pk=body["id"])
    assert (task.kind, task.payload, task.timeout) == ("shell", {"command": "echo hi"}, 12.0)
    event = AuditEvent.objects.get(action="task.dispatch")
    assert event.actor_id == user.pk
    assert event.target_id == body["id"]
    assert event.details["command"] == "echo hi"
    assert bells.drain() == [{"type": "mesh.doorbell", "reason": "task.ready", "node_id": "n1"}]


def test_user_without_grant_gets_404_and_nothing_is_sent(
    user_client, make_node, django_capture_on_commit_callbacks
):
    make_node("n1")
    bells = Doorbells("n1")
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(
            "/api/v1/nodes/n1/tasks/", {"command": "echo hi"}, format="json"
        )
    assert response.status_code == 404
    assert Task.objects.count() == 0
    assert not AuditEvent.objects.filter(action="task.dispatch").exists()
    assert bells.drain() == []


@pytest.mark.parametrize(
    ("change", "command", "code", "status"),
    [
        ({"is_active": False}, "echo hi", "node_inactive", 409),
        ({"skill_config": {"shell": False}}, "echo hi", "skill_disabled", 409),
        (
            {"sandbox_policy": {"mode": "strict", "allowed_commands": ["echo"]}},
            "echo hi; rm -rf /tmp/x",
            "command_not_allowed",
            403,
        ),
        ({}, "mkfs.ext4 /dev/sda", "command_not_allowed", 403),
    ],
)
def test_dispatch_refusals_store_nothing(
    user_client, staff_user, granted_node, change, command, code, status
):
    if change:
        services.node_update(actor=staff_user, node=granted_node, data=change)
    response = user_client.post("/api/v1/nodes/n1/tasks/", {"command": command}, format="json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert Task.objects.count() == 0
    assert not AuditEvent.objects.filter(action="task.dispatch").exists()


def test_capability_missing(user, granted_node):
    granted_node.capabilities = {"shell": False}
    granted_node.save()
    with pytest.raises(services.CapabilityMissing):
        services.task_dispatch(
            actor=user, node=granted_node, kind="shell", payload={"command": "echo hi"}
        )
    assert Task.objects.count() == 0


def test_no_audit_row_means_no_task_and_no_doorbell(
    user, granted_node, django_capture_on_commit_callbacks
):
    bells = Doorbells("n1")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TRIGGER audit_down BEFORE INSERT ON accounts_auditevent "
            "WHEN NEW.action = 'task.dispatch' BEGIN SELECT RAISE(ABORT, 'audit down'); END;"
        )
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(DatabaseError):
        services.task_dispatch(
            actor=user, node=granted_node, kind="shell", payload={"command": "echo hi"}
        )
    assert Task.objects.count() == 0
    assert bells.drain() == []


def test_idempotency_key_with_another_body_is_a_conflict(user_client, user, granted_node):
    first = user_client.post(
        "/api/v1/nodes/n1/tasks/",
        {"command": "echo 1", "idempotency_key": "k1"},
        format="json",
    )
    assert first.status_code == 201
    for body in (
        {"command": "rm -rf build", "idempotency_key": "k1"},
        {"command": "echo 1", "timeout": 99, "idempotency_key": "k1"},
        {"command": "echo 1", "env": {"A": "1"}, "idempotency_key": "k1"},
    ):
        again = user_client.post("/api/v1/nodes/n1/tasks/", body, format="json")
        assert again.status_code == 409, body
        assert again.json()["error"]["code"] == "idempotency_conflict"
    same = user_client.post(
        "/api/v1/nodes/n1/tasks/",
        {"command": "echo 1", "timeout": 30, "idempotency_key": "k1"},
        format="json",
    )
    assert (same.status_code, same.json()["id"]) == (201, first.json()["id"])
    assert Task.objects.count() == 1
    assert Task.objects.get().payload == {"command": "echo 1"}
    assert AuditEvent.objects.filter(action="task.dispatch").count() == 1


def test_policy_refusals_are_audited_once_a_window_per_actor(
    user_client, user, staff_user, granted_node, settings
):
    from accounts.models import AuditRefusalWindow

    settings.AUDIT_REFUSAL_WINDOW_SECONDS = 86400  # one window for the whole test

    services.node_update(
        actor=staff_user,
        node=granted_node,
        data={"sandbox_policy": {"mode": "strict", "allowed_commands": ["echo"]}},
    )
    for n in range(25):
        response = user_client.post(
            "/api/v1/nodes/n1/tasks/", {"command": f"id #{n}"}, format="json"
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "command_not_allowed"
    # One row per window (two only if the test ran across midnight UTC), the rest counted.
    rows = list(AuditEvent.objects.filter(action="task.refused").order_by("id"))
    windows = list(AuditRefusalWindow.objects.filter(action="task.refused").order_by("id"))
    assert 1 <= len(rows) == len(windows) <= 2
    assert sum(w.count for w in windows) == 25
    assert [w.first_event_id for w in windows] == [r.pk for r in rows]
    assert {w.actor_key for w in windows} == {f"user:{user.pk}"}
    assert (rows[0].actor_id, rows[0].target_id) == (user.pk, "n1")
    assert rows[0].details == {
        "node_id": "n1",
        "command": "id #0",
        "reason": "command_not_allowed",
        "aggregated_per_seconds": 86400,
    }
    assert Task.objects.count() == 0


def test_idempotency_key_returns_the_first_task(user, granted_node):
    first = services.task_dispatch(
        actor=user,
        node=granted_node,
        kind="shell",
        payload={"command": "echo 1"},
        idempotency_key="k1",
    )
    again = services.task_dispatch(
        actor=user,
        node=granted_node,
        kind="shell",
        payload={"command": "echo 1"},
        idempotency_key="k1",
    )
    assert again.pk == first.pk
    assert Task.objects.count() == 1
    assert AuditEvent.objects.filter(action="task.dispatch").count() == 1


def test_cancel_queued_task_directly(user_client, user, granted_node):
    task = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "echo hi"}
    )
    response = user_client.post(f"/api/v1/tasks/{task.pk}/cancel/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert AuditEvent.objects.filter(action="task.cancel", target_id=str(task.pk)).count() == 1


def test_cancel_running_task_asks_the_node(user, granted_node, django_capture_on_commit_callbacks):
    task = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "sleep 100"}
    )
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    task.refresh_from_db()
    bells = Doorbells("n1")
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = services.task_cancel(actor=user, task=task, reason="enough")
    assert cancelled.status == TaskStatus.RUNNING
    assert cancelled.cancel_requested_at is not None
    assert bells.drain() == [{"type": "mesh.doorbell", "reason": "task.cancel", "node_id": "n1"}]
    assert services.tasks_pending_cancel(node_id="n1") == [(str(task.pk), "enough")]


def test_task_detail_output_and_404_for_others(user_client, user, make_user, granted_node):
    task = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "echo hi"}
    )
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    output_append(node_id="n1", task_id=str(task.pk), seq=1, stream="stdout", data=b"hi\n")
    output_append(node_id="n1", task_id=str(task.pk), seq=2, stream="stderr", data=b"warn\n")
    services.task_finish(node_id="n1", task_id=str(task.pk), outcome="SUCCEEDED", exit_code=0)
    body = user_client.get(f"/api/v1/tasks/{task.pk}/").json()
    assert (body["status"], body["exit_code"], body["stdout"], body["stderr"]) == (
        "succeeded",
        0,
        "hi\n",
        "warn\n",
    )
    out = user_client.get(f"/api/v1/tasks/{task.pk}/output/?after_seq=1").json()
    assert out["chunks"] == [{"seq": 2, "stream": "stderr", "data": "warn\n"}]
    assert out["last_seq"] == 2
    listed = user_client.get("/api/v1/nodes/n1/tasks/").json()
    assert [t["id"] for t in listed["results"]] == [str(task.pk)]
    from rest_framework.test import APIClient

    other = APIClient()
    other.force_authenticate(make_user("mallory@example.com"))
    assert other.get(f"/api/v1/tasks/{task.pk}/").status_code == 404
    assert other.get(f"/api/v1/tasks/{task.pk}/output/").status_code == 404
    assert other.post(f"/api/v1/tasks/{task.pk}/cancel/").status_code == 404
    assert other.get("/api/v1/tasks/not-a-uuid/").status_code == 404


def test_task_list_uses_constant_queries(
    user_client, user, granted_node, django_assert_num_queries
):
    for i in range(3):
        services.task_dispatch(
            actor=user, node=granted_node, kind="shell", payload={"command": f"echo {i}"}
        )
    with django_assert_num_queries(3):  # node, count, page
        assert user_client.get("/api/v1/nodes/n1/tasks/").json()["count"] == 3
    for i in range(5):
        services.task_dispatch(
            actor=user, node=granted_node, kind="shell", payload={"command": f"echo {i}"}
        )
    with django_assert_num_queries(3):
        assert user_client.get("/api/v1/nodes/n1/tasks/").json()["count"] == 8


@pytest.mark.django_db(transaction=True)
def test_wait_returns_when_the_task_finishes(user_client, user, granted_node):
    task = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "echo hi"}
    )
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)

    def finish_later() -> None:
        time.sleep(0.5)
        services.task_finish(node_id="n1", task_id=str(task.pk), outcome="FAILED", exit_code=3)

    worker = threading.Thread(target=finish_later)
    started = time.monotonic()
    worker.start()
    body = user_client.get(f"/api/v1/tasks/{task.pk}/?wait=10").json()
    worker.join(timeout=10)
    assert (body["status"], body["exit_code"]) == ("failed", 3)
    assert time.monotonic() - started < 5
    started = time.monotonic()
    queued = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "echo later"}
    )
    body = user_client.get(f"/api/v1/tasks/{queued.pk}/?wait=0.5").json()
    assert body["status"] == "queued"
    assert 0.4 < time.monotonic() - started < 5
    assert user_client.get(f"/api/v1/tasks/{queued.pk}/?wait=61").status_code == 400
