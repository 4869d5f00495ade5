"""Long-poll caps through the API (in-process; the real-hub test is test_longpoll_live.py)."""

from __future__ import annotations

import json

import pytest

from cortex.api import longpoll
from mesh import services
from mesh.models import Task, TaskStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(user, make_node, grant):  # type: ignore[no-untyped-def]
    node, _ = make_node("n1")
    grant(user, node)
    return services.task_dispatch(
        actor=user, node=node, kind="shell", payload={"command": "echo hi"}
    )


@pytest.mark.parametrize("cap", ["LONGPOLL_PER_USER", "LONGPOLL_PER_PROCESS"])
def test_a_wait_past_a_cap_is_429_with_retry_after(settings, user_client, queued, cap):
    setattr(settings, cap, 0)
    response = user_client.get(f"/api/v1/tasks/{queued.pk}/?wait=5")
    assert response.status_code == 429
    assert response["Retry-After"] == str(longpoll.RETRY_AFTER_SECONDS)
    assert response.json()["error"]["code"] == "too_many_waits"
    assert longpoll.slots.held() == (0, 0)


def test_reads_that_do_not_wait_take_no_slot(settings, user_client, queued):
    settings.LONGPOLL_PER_USER = 0
    assert user_client.get(f"/api/v1/tasks/{queued.pk}/").status_code == 200
    assert user_client.get(f"/api/v1/tasks/{queued.pk}/?wait=0").status_code == 200
    Task.objects.filter(pk=queued.pk).update(status=TaskStatus.SUCCEEDED)
    done = user_client.get(f"/api/v1/tasks/{queued.pk}/?wait=5")
    assert (done.status_code, done.json()["status"]) == (200, "succeeded")


def test_a_wait_gives_its_slot_back(settings, user_client, queued):
    settings.LONGPOLL_PER_USER = 1
    for _ in range(2):
        response = user_client.get(f"/api/v1/tasks/{queued.pk}/?wait=0.2")
        assert (response.status_code, response.json()["status"]) == (200, "queued")
    assert longpoll.slots.held() == (0, 0)


def test_slots_count_per_user_and_in_all(settings):
    settings.LONGPOLL_PER_USER = 2
    settings.LONGPOLL_PER_PROCESS = 3
    with longpoll.slot(user_id=1), longpoll.slot(user_id=1):
        with pytest.raises(longpoll.TooManyWaits):
            longpoll.slots.take(1)
        with longpoll.slot(user_id=2):
            assert longpoll.slots.held() == (3, 2)
            with pytest.raises(longpoll.TooManyWaits):
                longpoll.slots.take(3)
    assert longpoll.slots.held() == (0, 0)


async def test_admission_caps_polls_in_flight_per_credential_and_in_all(settings):
    import asyncio

    settings.LONGPOLL_PER_USER = 2
    settings.LONGPOLL_PER_PROCESS = 3
    release = asyncio.Event()

    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})

    admission = longpoll.LongPollAdmission(inner)
    path = "/api/v1/tasks/00000000-0000-0000-0000-000000000001/"

    async def call(token: bytes, query: bytes = b"wait=30") -> list[dict]:  # type: ignore[type-arg]
        sent: list[dict] = []  # type: ignore[type-arg]

        async def send(message):  # type: ignore[no-untyped-def]
            sent.append(message)

        scope = {
            "type": "http",
            "path": path,
            "query_string": query,
            "headers": [(b"authorization", b"Bearer " + token)],
        }
        await admission(scope, None, send)
        return sent

    held = [asyncio.create_task(call(b"a")) for _ in range(2)]
    await asyncio.sleep(0)
    refused = await call(b"a")
    assert refused[0]["status"] == 429
    assert (b"retry-after", str(longpoll.RETRY_AFTER_SECONDS).encode()) in refused[0]["headers"]
    assert json.loads(refused[1]["body"])["error"]["code"] == "too_many_waits"
    held.append(asyncio.create_task(call(b"b")))
    await asyncio.sleep(0)
    assert (await call(b"c"))[0]["status"] == 429  # the process cap
    plain = asyncio.create_task(call(b"c", query=b""))  # not a poll: not counted
    await asyncio.sleep(0)
    assert not plain.done()
    release.set()
    assert [(await h)[0]["status"] for h in held] == [200, 200, 200]
    await plain
    assert (admission.total, dict(admission.in_flight)) == (0, {})
