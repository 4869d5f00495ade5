"""The sync services called directly: reconciliation only after commit, drift resolution
(keep / promote and its refusals), resync, and the task-end hook that records what a node holds."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditEvent
from cortex.errors import NotFound, ValidationFailed
from mesh import services as mesh_services
from mesh.models import Node, NodeStatus, Task, TaskKind, TaskStatus
from sessions_app.models import ChatSession, SessionNode
from workspaces.errors import WorkspaceDriftNotFetched, WorkspaceNoDrift
from workspaces.models import SyncState, Workspace, WorkspaceFile, WorkspaceNode
from workspaces.services import workspace_configure, workspace_file_write
from workspaces.services.files import mirror_store
from workspaces.services.sync import (
    on_task_end,
    workspace_drift_resolve,
    workspace_resync,
    workspace_sync_soon,
)

pytestmark = pytest.mark.django_db

OLD, NEW = b"old text\n", b"new text from the node\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def setup(user, staff_user) -> tuple[Workspace, Node]:
    """A hub workspace with one file and one attached (offline) node the owner may use."""
    session = ChatSession.objects.create(owner=user, title="ws")
    node, _ = mesh_services.node_create(actor=staff_user, node_id="box", display_name="Box")
    group = Group.objects.create(name="devs")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=node, group=group)
    SessionNode.objects.create(session=session, node=node)
    workspace = workspace_configure(actor=user, session=session, source="hub")
    workspace_file_write(actor=user, session=session, path="a.txt", body=io.BytesIO(OLD))
    return workspace, node


def _row(workspace: Workspace, **fields: Any) -> WorkspaceNode:
    row, _ = WorkspaceNode.objects.get_or_create(workspace=workspace, node_id=fields.pop("node"))
    WorkspaceNode.objects.filter(pk=row.pk).update(**fields)
    row.refresh_from_db()
    return row


def test_sync_soon_reconciles_only_after_commit(setup, django_capture_on_commit_callbacks) -> None:
    workspace, node = setup
    WorkspaceNode.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        workspace_sync_soon(workspace_id=workspace.pk)
        assert not WorkspaceNode.objects.exists()
    assert len(callbacks) == 1
    row = WorkspaceNode.objects.get()
    assert (row.node_id, row.state, row.known, row.pending) == (
        node.pk,
        SyncState.OFFLINE,
        None,
        0,
    )


def test_sync_soon_on_a_disabled_workspace_drops_its_rows(
    user, setup, django_capture_on_commit_callbacks
) -> None:
    workspace, node = setup
    _row(workspace, node=node.pk)
    with django_capture_on_commit_callbacks(execute=True):
        workspace_configure(actor=user, session=workspace.session, source="none")
        workspace_sync_soon(workspace_id=workspace.pk)
    assert not WorkspaceNode.objects.exists()


def test_drift_resolve_refusals(user, setup) -> None:
    workspace, node = setup
    _row(workspace, node=node.pk, state=SyncState.IN_SYNC)
    with pytest.raises(ValidationFailed) as bad:
        workspace_drift_resolve(actor=user, workspace=workspace, node_id="box", action="merge")
    assert (bad.value.code, bad.value.fields) == ("invalid_input", {"action": ["keep or promote."]})
    with pytest.raises(NotFound) as missing:
        workspace_drift_resolve(actor=user, workspace=workspace, node_id="other", action="keep")
    assert missing.value.code == "not_found"
    with pytest.raises(WorkspaceNoDrift) as calm:
        workspace_drift_resolve(actor=user, workspace=workspace, node_id="box", action="keep")
    assert calm.value.code == "workspace_no_drift"
    assert not AuditEvent.objects.filter(action__startswith="workspace.drift_").exists()


def test_drift_keep_clears_it_and_is_audited(
    user, setup, django_capture_on_commit_callbacks
) -> None:
    workspace, node = setup
    drift = [{"path": "a.txt", "change": "modified", "sha256": _sha(NEW), "size": len(NEW)}]
    _row(workspace, node=node.pk, state=SyncState.DRIFT, drift=drift, known={})
    with django_capture_on_commit_callbacks() as callbacks:
        row = workspace_drift_resolve(actor=user, workspace=workspace, node_id="box", action="keep")
    assert (row.state, row.drift) == (SyncState.SYNCING, [])
    assert len(callbacks) == 1  # the node is overwritten once committed
    assert WorkspaceFile.objects.get(workspace=workspace, path="a.txt").sha256 == _sha(OLD)
    event = AuditEvent.objects.get(action="workspace.drift_keep")
    assert (event.actor_id, event.target_id) == (user.pk, str(workspace.session_id))
    assert event.details == {"node_id": "box", "paths": ["a.txt"]}


def test_drift_promote_refuses_bytes_not_yet_fetched(user, setup) -> None:
    workspace, node = setup
    drift = [{"path": "a.txt", "change": "modified", "sha256": _sha(NEW), "size": len(NEW)}]
    _row(workspace, node=node.pk, state=SyncState.DRIFT, drift=drift)
    with pytest.raises(WorkspaceDriftNotFetched) as caught:
        workspace_drift_resolve(actor=user, workspace=workspace, node_id="box", action="promote")
    assert caught.value.code == "workspace_drift_not_fetched"
    assert WorkspaceNode.objects.get().state == SyncState.DRIFT  # nothing changed
    assert WorkspaceFile.objects.get(workspace=workspace, path="a.txt").sha256 == _sha(OLD)
    assert not AuditEvent.objects.filter(action="workspace.drift_promote").exists()


def test_drift_promote_makes_the_nodes_version_the_source(user, setup) -> None:
    workspace, node = setup
    workspace_file_write(actor=user, session=workspace.session, path="b.txt", body=io.BytesIO(b"b"))
    mirror_store(session_id=workspace.session_id, body=io.BytesIO(NEW), sha256=_sha(NEW))
    drift = [
        {"path": "a.txt", "change": "modified", "sha256": _sha(NEW), "size": len(NEW)},
        {"path": "b.txt", "change": "deleted"},
        {"path": "c.txt", "change": "added", "sha256": _sha(NEW), "size": len(NEW)},
    ]
    drift[0]["fetched"] = True
    _row(workspace, node=node.pk, state=SyncState.DRIFT, drift=drift)
    workspace_drift_resolve(
        actor=user, workspace=workspace, node_id="box", action="promote", paths=["a.txt", "b.txt"]
    )
    files = dict(WorkspaceFile.objects.filter(workspace=workspace).values_list("path", "sha256"))
    assert files["a.txt"] == _sha(NEW)
    assert "b.txt" not in files and "c.txt" not in files  # c was not chosen
    event = AuditEvent.objects.get(action="workspace.drift_promote")
    assert event.details == {"node_id": "box", "paths": ["a.txt", "b.txt"]}


def test_drift_promote_passes_over_failed_transfers(user, setup) -> None:
    """A drift row can hold a failed transfer (`error`, no `change`): taking the node's version
    of everything takes its files and clears the failure, never refuses on it."""
    workspace, node = setup
    mirror_store(session_id=workspace.session_id, body=io.BytesIO(NEW), sha256=_sha(NEW))
    drift = [
        {"path": "c.txt", "change": "added", "sha256": _sha(NEW), "size": len(NEW)},
        {"path": "big.bin", "error": "too_large"},
    ]
    drift[0]["fetched"] = True
    _row(workspace, node=node.pk, state=SyncState.DRIFT, drift=drift)
    row = workspace_drift_resolve(actor=user, workspace=workspace, node_id="box", action="promote")
    assert (row.state, row.drift) == (SyncState.SYNCING, [])
    files = dict(WorkspaceFile.objects.filter(workspace=workspace).values_list("path", "sha256"))
    assert files["c.txt"] == _sha(NEW) and "big.bin" not in files


def test_resync_forgets_what_the_hub_believes_and_is_audited(
    user, setup, django_capture_on_commit_callbacks
) -> None:
    workspace, node = setup
    known = {"a.txt": _sha(OLD)}
    _row(workspace, node=node.pk, state=SyncState.DRIFT, known=known)
    WorkspaceFile.objects.filter(workspace=workspace, path__startswith=".skills/").delete()
    with django_capture_on_commit_callbacks() as callbacks:
        workspace_resync(actor=user, workspace_id=workspace.pk)
    row = WorkspaceNode.objects.get()
    assert (row.state, row.known, row.last_known) == (SyncState.SYNCING, None, known)
    assert len(callbacks) == 1
    assert WorkspaceFile.objects.filter(workspace=workspace, path__startswith=".skills/").exists()
    event = AuditEvent.objects.get(action="workspace.resync")
    assert (event.actor_id, event.target_id) == (user.pk, str(workspace.session_id))


def test_resync_of_a_missing_workspace_is_refused(user) -> None:
    with pytest.raises(Workspace.DoesNotExist):
        workspace_resync(actor=user, workspace_id=999999)


def _task(workspace: Workspace, node: Node, requested_by: Any, **fields: Any) -> Task:
    return Task.objects.create(
        node=node,
        requested_by=requested_by,
        chat_session_id=workspace.session_id,
        kind=TaskKind.FILES,
        **fields,
    )


def _end(task: Task) -> None:
    on_task_end(task_id=str(task.pk), kind=task.kind, payload=task.payload, status=task.status)


def test_a_manifest_that_matches_the_mirror_is_in_sync(user, setup) -> None:
    workspace, node = setup
    Node.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    WorkspaceFile.objects.filter(workspace=workspace).exclude(path="a.txt").delete()
    _row(workspace, node=node.pk)
    entries = [["a.txt", len(OLD), 0o644, 0, _sha(OLD)]]
    payload = {"action": "manifest", "path": f"sessions/{workspace.session_id}"}
    payload["workspace"] = workspace.pk
    task = _task(
        workspace,
        node,
        user,
        payload=payload,
        status=TaskStatus.SUCCEEDED,
        result={"entries": entries},
    )
    _end(task)
    row = WorkspaceNode.objects.get()
    assert (row.state, row.known, row.pending, row.drift) == (
        SyncState.IN_SYNC,
        {"a.txt": _sha(OLD)},
        0,
        [],
    )


def test_a_manifest_with_the_nodes_own_change_is_drift(user, setup) -> None:
    workspace, node = setup
    Node.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    _row(workspace, node=node.pk)
    payload = {"action": "manifest", "workspace": workspace.pk}
    entries = [["a.txt", len(NEW), 0o644, 0, _sha(NEW)]]
    task = _task(
        workspace,
        node,
        user,
        payload=payload,
        status=TaskStatus.SUCCEEDED,
        result={"entries": entries},
    )
    _end(task)
    row = WorkspaceNode.objects.get()
    assert row.state == SyncState.DRIFT
    assert row.drift == [
        {
            "path": "a.txt",
            "change": "modified",
            "sha256": _sha(NEW),
            "size": len(NEW),
            "mode": 0o644,
        }
    ]
    fetch = Task.objects.get(payload__action="read")
    assert fetch.payload["drift"] is True and fetch.payload["rel"] == "a.txt"
    assert fetch.requested_by_id == user.pk


def test_task_end_ignores_what_is_not_the_sessions_own_sync_task(user, staff_user, setup) -> None:
    workspace, node = setup
    _row(workspace, node=node.pk, state=SyncState.SYNCING)
    payload = {"action": "manifest", "workspace": workspace.pk}
    result = {"entries": [["a.txt", 1, 0o644, 0, _sha(NEW)]]}
    foreign = _task(
        workspace, node, staff_user, payload=payload, status=TaskStatus.SUCCEEDED, result=result
    )
    _end(foreign)  # another user's task naming this workspace
    other = _task(
        workspace, node, user, payload={"action": "manifest"}, status=TaskStatus.SUCCEEDED
    )
    _end(other)  # no workspace in its payload
    on_task_end(task_id=str(foreign.pk), kind=TaskKind.SHELL, payload=payload, status="succeeded")
    on_task_end(
        task_id="00000000-0000-0000-0000-000000000000",
        kind=TaskKind.FILES,
        payload=payload,
        status="succeeded",
    )
    row = WorkspaceNode.objects.get()
    assert (row.state, row.known, row.drift) == (SyncState.SYNCING, None, [])


def test_a_refused_write_is_drift_and_a_lost_one_asks_again(user, setup) -> None:
    workspace, node = setup
    Node.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    known = {"a.txt": _sha(b"stale")}
    _row(workspace, node=node.pk, known=known)
    write = {"action": "write", "workspace": workspace.pk, "rel": "a.txt", "sha256": _sha(OLD)}
    refused = _task(
        workspace, node, user, payload=write, status=TaskStatus.FAILED, error_code="denied"
    )
    _end(refused)
    row = WorkspaceNode.objects.get()
    assert (row.state, row.known, row.last_known) == (SyncState.DRIFT, None, known)
    assert row.drift == [{"path": "a.txt", "error": "denied"}]
    assert not Task.objects.filter(payload__action="manifest").exists()

    _row(workspace, node=node.pk, state=SyncState.SYNCING, known=known, drift=[])
    _end(_task(workspace, node, user, payload=write, status=TaskStatus.LOST))
    row = WorkspaceNode.objects.get()
    assert (row.state, row.known, row.last_known) == (SyncState.SYNCING, None, known)
    manifest = Task.objects.get(payload__action="manifest")
    assert manifest.payload["path"] == f"sessions/{workspace.session_id}"
