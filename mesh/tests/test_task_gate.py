"""Sensitive commands need a person's confirmation; a task that never reaches its node ends.

REST and services; the real agent's side is in test_task_gate_live.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from cortex.errors import ValidationFailed
from mesh import services
from mesh.models import Task, TaskStatus

pytestmark = pytest.mark.django_db

CONN = "conn-1"


@pytest.fixture
def granted_node(user, make_node, grant):  # type: ignore[no-untyped-def]
    node, _ = make_node("n1")
    grant(user, node)
    return node


# --- confirmation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("rm -rf build", "rm"),
        ("echo start && sudo -n true", "sudo"),
        ("ls; dd if=/dev/zero of=x bs=1 count=1", "dd"),
        ("echo $(shred -u notes.txt)", "shred"),
    ],
)
def test_sensitive_command_without_confirm_is_409_naming_it(
    user_client, granted_node, command, name
):
    for body in ({"command": command}, {"command": command, "confirm": False}):
        response = user_client.post("/api/v1/nodes/n1/tasks/", body, format="json")
        assert response.status_code == 409, response.content
        error = response.json()["error"]
        assert error["code"] == "confirmation_required"
        assert error["message"] == (
            f"'{name}' is sensitive on this node and needs confirmation: "
            'send the request again with "confirm": true to run it.'
        )
        assert error["fields"] == {"confirm": [f"Required: '{name}' is sensitive on this node."]}
    assert Task.objects.count() == 0
    assert not AuditEvent.objects.filter(action="task.dispatch").exists()


def test_confirmed_sensitive_command_is_queued_with_the_hubs_mark(user_client, granted_node):
    response = user_client.post(
        "/api/v1/nodes/n1/tasks/", {"command": "rm -rf build", "confirm": True}, format="json"
    )
    assert response.status_code == 201, response.content
    task = Task.objects.get(pk=response.json()["id"])
    assert task.payload == {"command": "rm -rf build", "confirmed": True}
    event = AuditEvent.objects.get(action="task.dispatch")
    assert (event.details["sensitive"], event.details["confirmed"]) == (True, True)


def test_plain_command_carries_no_mark(user_client, granted_node):
    response = user_client.post("/api/v1/nodes/n1/tasks/", {"command": "ls -l"}, format="json")
    assert response.status_code == 201
    assert Task.objects.get().payload == {"command": "ls -l"}
    assert AuditEvent.objects.get(action="task.dispatch").details["confirmed"] is False


def test_a_caller_cannot_set_the_mark_itself(user, granted_node):
    with pytest.raises(ValidationFailed) as info:
        services.task_dispatch(
            actor=user,
            node=granted_node,
            kind="shell",
            payload={"command": "rm -rf build", "confirmed": True},
        )
    assert info.value.fields == {"confirmed": ['Send "confirm": true instead.']}
    assert Task.objects.count() == 0


def test_policy_marks_what_is_sensitive(user_client, staff_user, granted_node):
    services.node_update(
        actor=staff_user,
        node=granted_node,
        data={"sandbox_policy": {"mode": "permissive", "sensitive_commands": ["git push"]}},
    )
    refused = user_client.post(
        "/api/v1/nodes/n1/tasks/", {"command": "git push origin main"}, format="json"
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "confirmation_required"
    assert "'git'" in refused.json()["error"]["message"]
    plain = user_client.post("/api/v1/nodes/n1/tasks/", {"command": "rm -f x"}, format="json")
    assert plain.status_code == 201  # no longer sensitive on this node


def test_confirm_must_be_a_boolean(user_client, granted_node):
    response = user_client.post(
        "/api/v1/nodes/n1/tasks/", {"command": "rm x", "confirm": "perhaps"}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["confirm"]
    assert Task.objects.count() == 0


# --- delivery deadline -----------------------------------------------------------------------


def test_every_task_gets_a_delivery_deadline(user_client, granted_node, settings):
    settings.MESH_TASK_DELIVERY_TIMEOUT = 120.0
    before = timezone.now()
    default = user_client.post("/api/v1/nodes/n1/tasks/", {"command": "ls"}, format="json").json()
    own = user_client.post(
        "/api/v1/nodes/n1/tasks/", {"command": "ls", "delivery_timeout": 7}, format="json"
    ).json()
    after = timezone.now()
    first, second = Task.objects.get(pk=default["id"]), Task.objects.get(pk=own["id"])
    assert before + timedelta(seconds=120) <= first.deliver_by <= after + timedelta(seconds=120)
    assert before + timedelta(seconds=7) <= second.deliver_by <= after + timedelta(seconds=7)
    assert default["deliver_by"] == first.deliver_by.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("value", [0, 0.5, -1, 86401, "soon", None, "nan"])
def test_delivery_timeout_is_bounded(user_client, granted_node, value):
    response = user_client.post(
        "/api/v1/nodes/n1/tasks/", {"command": "ls", "delivery_timeout": value}, format="json"
    )
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["delivery_timeout"]
    assert Task.objects.count() == 0


def _expire(task: Task) -> None:
    Task.objects.filter(pk=task.pk).update(deliver_by=timezone.now() - timedelta(seconds=1))


def test_claim_skips_a_task_past_its_deadline(user, granted_node):
    late = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "echo late"}
    )
    on_time = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "echo on time"}
    )
    _expire(late)
    services.node_hello(node_id="n1", connection_id=CONN)
    claim = services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    assert claim is not None and [t.pk for t in claim.tasks] == [on_time.pk]
    assert Task.objects.get(pk=late.pk).status == TaskStatus.QUEUED  # not swept yet: still skipped
    again = services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    assert again is not None and again.tasks == []


def test_sweep_ends_expired_queued_tasks_not_delivered(user, user_client, granted_node):
    late = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "echo late"}
    )
    waiting = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "echo waiting"}
    )
    _expire(late)
    result = services.presence_sweep()
    assert result["not_delivered"] == 1
    ended = Task.objects.get(pk=late.pk)
    assert (ended.status, ended.error_code, ended.finished_at is not None) == (
        TaskStatus.TIMED_OUT,
        "not_delivered",
        True,
    )
    assert Task.objects.get(pk=waiting.pk).status == TaskStatus.QUEUED
    assert services.presence_sweep()["not_delivered"] == 0  # idempotent
    body = user_client.get(f"/api/v1/tasks/{late.pk}/").json()
    assert (body["status"], body["error_code"], body["error_message"]) == (
        "timed_out",
        "not_delivered",
        "The node did not take the task before its delivery deadline (it was offline or busy); "
        "the task was never delivered and will not run.",
    )
    services.node_hello(node_id="n1", connection_id=CONN)
    claim = services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    assert claim is not None and [t.pk for t in claim.tasks] == [waiting.pk]


def test_expiry_never_touches_a_delivered_task(user, granted_node):
    task = services.task_dispatch(
        actor=user, node=granted_node, kind="shell", payload={"command": "echo hi"}
    )
    services.node_hello(node_id="n1", connection_id=CONN)
    services.tasks_claim_for_delivery(node_id="n1", connection_id=CONN)
    _expire(task)
    assert services.task_expire_undelivered(task_id=task.pk) is False
    assert services.presence_sweep()["not_delivered"] == 0
    assert Task.objects.get(pk=task.pk).status == TaskStatus.DISPATCHED


@pytest.mark.django_db(transaction=True)
def test_a_waiter_learns_at_the_deadline(user_client, user, granted_node):
    task = services.task_dispatch(
        actor=user,
        node=granted_node,
        kind="shell",
        payload={"command": "echo hi"},
        delivery_timeout=1,
    )
    body = user_client.get(f"/api/v1/tasks/{task.pk}/?wait=30").json()
    assert (body["status"], body["error_code"]) == ("timed_out", "not_delivered")
