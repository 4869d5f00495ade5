"""Browser downloads and the workspace, on the hub: where a chat's downloads go on each node
(the one folder rule and the caps), the hub refusing a hostile target, and the task-end hook
that fetches a download from the node and stores it in the mirror only when it checks out."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditEvent
from cortex.errors import ValidationFailed
from mesh import services as mesh_services
from mesh.models import Node, Task, TaskKind, TaskStatus
from sessions_app.models import ChatSession, SessionNode
from workspaces.models import SyncState, Workspace, WorkspaceFile, WorkspaceNode
from workspaces.selectors import workspace_downloads_target, workspace_node_folders
from workspaces.services import workspace_configure, workspace_file_write
from workspaces.services.downloads import DOWNLOAD_OF, on_task_end

pytestmark = pytest.mark.django_db

REPORT = b"quarterly numbers\n"
SHA = hashlib.sha256(REPORT).hexdigest()


@pytest.fixture
def world(user, staff_user) -> tuple[ChatSession, Node, Node]:
    """alice's chat with two attached nodes she may use; `web` reports a browser."""
    session = ChatSession.objects.create(owner=user, title="dl")
    group = Group.objects.create(name="devs")
    group.user_set.add(user)
    nodes = []
    for node_id in ("web", "box"):
        node, _ = mesh_services.node_create(
            actor=staff_user, node_id=node_id, display_name=node_id, skill_config={"browser": True}
        )
        Node.objects.filter(pk=node.pk).update(capabilities={"browser": True, "files": True})
        node.refresh_from_db()
        mesh_services.node_grant(actor=staff_user, node=node, group=group)
        SessionNode.objects.create(session=session, node=node)
        nodes.append(node)
    return session, nodes[0], nodes[1]


def test_no_workspace_no_target(world) -> None:  # type: ignore[no-untyped-def]
    session, web, _ = world
    assert workspace_downloads_target(session_id=session.pk, node=web) is None
    assert workspace_downloads_target(session_id=None, node=web) is None
    assert workspace_node_folders(session_id=session.pk) == {}


def test_a_hub_workspace_target_is_the_session_folder_within_the_caps(  # type: ignore[no-untyped-def]
    user, world, settings
) -> None:
    session, web, box = world
    workspace_configure(actor=user, session=session, source="hub")
    folder = f"sessions/{session.pk}"
    # Up to the per-file cap: a download larger than one read comes in ranged reads.
    expected = {"folder": folder, "max_bytes": settings.WORKSPACE_MAX_FILE_BYTES}
    assert workspace_downloads_target(session_id=session.pk, node=web) == expected
    assert workspace_node_folders(session_id=session.pk) == {"web": folder, "box": folder}
    settings.WORKSPACE_MAX_FILE_BYTES = 100
    assert workspace_downloads_target(session_id=session.pk, node=web)["max_bytes"] == 100
    workspace_file_write(actor=user, session=session, path="a.txt", body=io.BytesIO(b"x" * 70))
    used = WorkspaceFile.objects.filter(workspace__session=session).values_list("size", flat=True)
    settings.WORKSPACE_MAX_BYTES = sum(used) + 40  # 40 bytes of room left
    assert workspace_downloads_target(session_id=session.pk, node=web)["max_bytes"] == 40
    settings.WORKSPACE_MAX_BYTES = sum(used) - 1  # over already: nothing more joins
    assert workspace_downloads_target(session_id=session.pk, node=web)["max_bytes"] == 0


def test_a_node_workspace_target_is_the_leads_folder_there_and_the_session_folder_elsewhere(  # type: ignore[no-untyped-def]
    user, world, settings
) -> None:
    session, web, box = world
    workspace_configure(actor=user, session=session, source="node", node_id="web", path="proj")
    lead = workspace_downloads_target(session_id=session.pk, node=web)
    other = workspace_downloads_target(session_id=session.pk, node=box)
    cap = settings.WORKSPACE_MAX_FILE_BYTES
    assert lead == {"folder": "proj", "max_bytes": cap}
    assert other == {"folder": f"sessions/{session.pk}", "max_bytes": cap}
    # The shell's starting folders come from the same rule.
    folders = workspace_node_folders(session_id=session.pk)
    assert folders == {"web": "proj", "box": f"sessions/{session.pk}"}
    workspace_configure(actor=user, session=session, source="node", node_id="web", path="")
    assert workspace_downloads_target(session_id=session.pk, node=web)["folder"] == "."
    assert workspace_node_folders(session_id=session.pk)["web"] == "."


@pytest.mark.parametrize(
    "target",
    [
        {"folder": "../x", "max_bytes": 1},
        {"folder": "/etc", "max_bytes": 1},
        {"folder": "a//b", "max_bytes": 1},
        {"folder": "sessions/1", "max_bytes": -1},
        {"folder": "sessions/1"},
        "sessions/1",
    ],
)
def test_the_hub_refuses_a_hostile_target_and_queues_nothing(user, world, target: Any) -> None:  # type: ignore[no-untyped-def]
    session, web, _ = world
    with pytest.raises(ValidationFailed) as caught:
        mesh_services.task_dispatch(
            actor=user,
            node=web,
            kind="browser",
            payload={"action": "tabs"},
            chat_session_id=session.pk,
            browser_downloads=target,
        )
    assert list(caught.value.fields or {}) == ["downloads"]
    assert not Task.objects.exists()


def test_the_hub_sends_the_target_with_the_task(user, world) -> None:  # type: ignore[no-untyped-def]
    session, web, _ = world
    target = {"folder": f"sessions/{session.pk}", "max_bytes": 10}
    task = mesh_services.task_dispatch(
        actor=user,
        node=web,
        kind="browser",
        payload={"action": "tabs"},
        chat_session_id=session.pk,
        browser_downloads=target,
    )
    assert task.payload == {"action": "tabs", "session": str(session.pk), "downloads": target}


def _browser_end(session: ChatSession, node: Node, user: Any, downloads: Any) -> Task:
    """A browser task of the chat that ended with these downloads reported."""
    target = workspace_downloads_target(session_id=session.pk, node=node)
    task = Task.objects.create(
        node=node,
        requested_by=user,
        chat_session_id=session.pk,
        kind=TaskKind.BROWSER,
        payload={
            "action": "click",
            "selector": "#dl",
            "session": str(session.pk),
            **({"downloads": target} if target else {}),
        },
        status=TaskStatus.SUCCEEDED,
        result={"downloads": downloads},
    )
    on_task_end(task_id=str(task.pk), kind=task.kind, payload=task.payload, status=task.status)
    return task


def _read_end(read: Task, content: bytes) -> None:
    Task.objects.filter(pk=read.pk).update(
        status=TaskStatus.SUCCEEDED,
        result={"content": base64.b64encode(content).decode(), "encoding": "base64"},
    )
    on_task_end(task_id=str(read.pk), kind=read.kind, payload=read.payload, status="succeeded")


def test_a_download_is_fetched_and_stored_in_the_mirror(  # type: ignore[no-untyped-def]
    user, world, django_capture_on_commit_callbacks
) -> None:
    session, web, _ = world
    workspace = workspace_configure(actor=user, session=session, source="hub")
    WorkspaceNode.objects.create(workspace=workspace, node=web, known={})
    entry = {"workspace_path": "downloads/report.csv", "bytes": len(REPORT), "sha256": SHA}
    _browser_end(session, web, user, [entry])
    read = Task.objects.get(kind=TaskKind.FILES)
    assert read.payload == {
        "action": "read",
        "encoding": "base64",
        "path": f"sessions/{session.pk}/downloads/report.csv",
        DOWNLOAD_OF: workspace.pk,
        "rel": "downloads/report.csv",
        "sha256": SHA,
    }
    assert (read.requested_by_id, read.chat_session_id) == (user.pk, session.pk)
    with django_capture_on_commit_callbacks() as callbacks:
        _read_end(read, REPORT)
    row = WorkspaceFile.objects.get(workspace=workspace, path="downloads/report.csv")
    assert (row.size, row.sha256) == (len(REPORT), SHA)
    # The node holds these bytes already: the sync will not push them back.
    assert WorkspaceNode.objects.get(workspace=workspace, node=web).known == {
        "downloads/report.csv": SHA
    }
    assert len(callbacks) == 1  # the other nodes follow once committed
    event = AuditEvent.objects.get(action="workspace.write", details__source="browser_download")
    assert event.details["path"] == "downloads/report.csv" and event.actor_id == user.pk


def test_bytes_that_do_not_match_are_not_stored(user, world) -> None:  # type: ignore[no-untyped-def]
    session, web, _ = world
    workspace = workspace_configure(actor=user, session=session, source="hub")
    entry = {"workspace_path": "downloads/report.csv", "bytes": len(REPORT), "sha256": SHA}
    _browser_end(session, web, user, [entry])
    _read_end(Task.objects.get(kind=TaskKind.FILES), b"something else\n")
    assert not WorkspaceFile.objects.filter(
        workspace=workspace, path__startswith="downloads/"
    ).exists()
    assert not AuditEvent.objects.filter(details__source="browser_download").exists()


@pytest.mark.parametrize(
    "path",
    [
        "../escape.csv",
        "downloads/../../escape.csv",
        "/etc/passwd",
        "src/app.py",
        "downloads/sub/x.csv",
        "downloads",
        "downloads/a\x00b",
        7,
    ],
)
def test_a_node_cannot_name_another_file_to_fetch(user, world, path: Any) -> None:  # type: ignore[no-untyped-def]
    session, web, _ = world
    workspace_configure(actor=user, session=session, source="hub")
    entries = [
        {"workspace_path": path, "bytes": 5, "sha256": SHA},
        {"workspace_path": "downloads/ok.csv", "bytes": 5, "sha256": "not-a-hash"},
        {"workspace_path": "downloads/ok.csv", "bytes": True, "sha256": SHA},
        {"node_path": "downloads/other.csv", "bytes": 5, "sha256": SHA},
        "downloads/plain.csv",
    ]
    _browser_end(session, web, user, entries)
    assert not Task.objects.filter(kind=TaskKind.FILES).exists()


def test_what_the_caps_exclude_or_the_lead_reports_is_not_fetched(  # type: ignore[no-untyped-def]
    user, world, settings
) -> None:
    session, web, _ = world
    workspace_configure(actor=user, session=session, source="hub")
    settings.WORKSPACE_MAX_FILE_BYTES = 10
    big = {"workspace_path": "downloads/big.bin", "bytes": 11, "sha256": SHA}
    _browser_end(session, web, user, [big])
    assert not Task.objects.filter(kind=TaskKind.FILES).exists()
    settings.WORKSPACE_MAX_FILE_BYTES = 1000
    workspace_configure(actor=user, session=session, source="node", node_id="web", path="p")
    entry = {"workspace_path": "downloads/report.csv", "bytes": len(REPORT), "sha256": SHA}
    _browser_end(session, web, user, [entry])  # the lead: its watch brings the file
    assert not Task.objects.filter(kind=TaskKind.FILES, payload__has_key=DOWNLOAD_OF).exists()


def test_another_users_browser_task_fetches_nothing(user, staff_user, world) -> None:  # type: ignore[no-untyped-def]
    session, web, _ = world
    workspace_configure(actor=user, session=session, source="hub")
    entry = {"workspace_path": "downloads/report.csv", "bytes": len(REPORT), "sha256": SHA}
    _browser_end(session, web, staff_user, [entry])
    assert not Task.objects.filter(kind=TaskKind.FILES).exists()
    assert (
        not Workspace.objects.get(session=session)
        .files.filter(path__startswith="downloads")
        .exists()
    )


def test_a_manifest_that_saw_the_download_first_is_no_drift_once_it_is_stored(  # type: ignore[no-untyped-def]
    user, world
) -> None:
    session, web, _ = world
    workspace = workspace_configure(actor=user, session=session, source="hub")
    seen = {"path": "downloads/report.csv", "change": "added", "sha256": SHA, "size": 18}
    other = {"path": "notes.txt", "change": "added", "sha256": "0" * 64, "size": 1}
    WorkspaceNode.objects.create(
        workspace=workspace, node=web, known={}, state=SyncState.DRIFT, drift=[seen]
    )
    entry = {"workspace_path": "downloads/report.csv", "bytes": len(REPORT), "sha256": SHA}
    _browser_end(session, web, user, [entry])
    _read_end(Task.objects.get(kind=TaskKind.FILES, payload__rel="downloads/report.csv"), REPORT)
    row = WorkspaceNode.objects.get(workspace=workspace, node=web)
    assert (row.state, row.drift) == (SyncState.SYNCING, [])
    assert row.known == {"downloads/report.csv": SHA}
    # A node with drift of its own keeps it (a person resolves that).
    WorkspaceNode.objects.filter(pk=row.pk).update(state=SyncState.DRIFT, drift=[seen, other])
    WorkspaceFile.objects.filter(workspace=workspace, path="downloads/report.csv").delete()
    _read_end(Task.objects.get(kind=TaskKind.FILES, payload__rel="downloads/report.csv"), REPORT)
    row.refresh_from_db()
    assert (row.state, row.drift) == (SyncState.DRIFT, [other])
