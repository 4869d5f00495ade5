"""Stored browser screenshots leave storage with what owns them: the chat (its content), the
node (its task journal), and, for any left behind, the sweep of orphaned blobs."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from cortex.sweeps import sweeps_run
from mesh import services
from mesh.models import Node, Task, TaskStatus
from mesh.tests.test_browser_contract import _png, web  # noqa: F401  # fixture, as `node`

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(web: Node) -> Node:  # noqa: F811  # the contract tests' browser node
    return web


@pytest.fixture
def media(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def _shot(user: Any, node: Node, chat_session_id: int | None = None) -> Task:
    """A browser task that took a screenshot, finished through the mesh services."""
    task = services.task_dispatch(
        actor=user,
        node=node,
        kind="browser",
        payload={"action": "screenshot"},
        chat_session_id=chat_session_id,
    )
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    services.task_finish(
        node_id=node.node_id,
        task_id=str(task.pk),
        outcome="SUCCEEDED",
        exit_code=0,
        result={"png_base64": base64.b64encode(_png()).decode(), "tab": 1},
    )
    task.refresh_from_db()
    assert task.result["screenshot"]["stored"] is True
    assert default_storage.exists(_name(task))
    return task


def _name(task: Task) -> str:
    return f"mesh/browser/{task.pk}.png"


def _age(name: str, seconds: float) -> None:
    path = default_storage.path(name)
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_deleting_a_chat_removes_its_screenshots(
    user, user_client, node, media, django_capture_on_commit_callbacks
):
    from sessions_app import services as chat

    session = chat.session_create(actor=user, title="web")
    other = chat.session_create(actor=user, title="kept")
    mine, kept, apart = (
        _shot(user, node, session.pk),
        _shot(user, node, other.pk),
        _shot(user, node),
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.delete(f"/api/v1/sessions/{session.pk}/")
    assert response.status_code == 204
    assert not default_storage.exists(_name(mine))
    mine.refresh_from_db()  # the task row stays (audited); it no longer claims a blob
    assert mine.result["screenshot"] == {"stored": False, "reason": "deleted"}
    assert user_client.get(f"/api/v1/tasks/{mine.pk}/screenshot/").status_code == 404
    assert default_storage.exists(_name(kept)) and default_storage.exists(_name(apart))


def test_deleting_a_node_removes_its_tasks_screenshots(
    user, staff_user, node, media, make_node, grant, django_capture_on_commit_callbacks
):
    other, _ = make_node("web2", skill_config={"browser": True})
    Node.objects.filter(pk=other.pk).update(capabilities={"browser": True})
    other.refresh_from_db()
    grant(user, other)
    gone, kept = _shot(user, node), _shot(user, other)
    with django_capture_on_commit_callbacks(execute=True):
        services.node_delete(actor=staff_user, node=node)
    assert not Task.objects.filter(pk=gone.pk).exists()
    assert not default_storage.exists(_name(gone))
    assert default_storage.exists(_name(kept))


def test_the_sweep_removes_old_orphans_only(user, node, media):
    claimed = _shot(user, node)
    orphan = _shot(user, node)
    young = _shot(user, node)
    Task.objects.filter(pk__in=[orphan.pk, young.pk]).delete()  # as a raw delete would
    stray = default_storage.save("mesh/browser/not-a-task.png", ContentFile(b"x"))
    for name in (_name(claimed), _name(orphan), stray):
        _age(name, 3600)
    assert sweeps_run(force=True)["mesh.browser_screenshots_sweep"] == 2
    assert not default_storage.exists(_name(orphan)) and not default_storage.exists(stray)
    assert default_storage.exists(_name(claimed))  # its task claims it
    assert default_storage.exists(_name(young))  # its result may not be committed yet
    assert services.browser_screenshots_sweep() == 0


def test_the_sweep_removes_screenshots_of_chats_already_gone(
    user, node, media, django_capture_on_commit_callbacks
):
    from sessions_app import services as chat
    from sessions_app.models import ChatSession

    session = chat.session_create(actor=user, title="web")
    task = _shot(user, node, session.pk)
    ChatSession.objects.filter(pk=session.pk).delete()  # gone without the service
    with django_capture_on_commit_callbacks(execute=True):
        results = sweeps_run(force=True)
    assert results["sessions.screenshots_of_deleted_chats"] == 1
    task.refresh_from_db()
    assert task.result["screenshot"] == {"stored": False, "reason": "deleted"}
    assert not default_storage.exists(_name(task))


def test_throttled_sweeps_wait_for_their_turn(user, node, media):
    sweeps_run(force=True)
    assert "mesh.browser_screenshots_sweep" not in sweeps_run()
    assert "sessions.turns_reap_stale" in sweeps_run()  # unthrottled: every round


def test_the_sweeps_are_registered():
    from cortex import sweeps
    from sessions_app.services.sessions import screenshots_of_deleted_chats_sweep

    assert sweeps._sweeps["mesh.browser_screenshots_sweep"] is services.browser_screenshots_sweep
    registered = sweeps._sweeps["sessions.screenshots_of_deleted_chats"]
    assert registered is screenshots_of_deleted_chats_sweep
    assert sweeps._every["mesh.browser_screenshots_sweep"] == 300


def test_deleting_screenshots_of_no_task_does_nothing(media):
    assert services.browser_screenshots_delete(task_ids=[]) == 0
