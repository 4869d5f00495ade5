"""Long-poll caps through the API (in-process; the real-hub test is test_longpoll_live.py)."""

from __future__ import annotations

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
