"""The executable bit is synced: the hub compares a file's sha256 and its executable bit, so a
mode-only change moves the file again (with its mode), and a node that reports the bit is in
sync."""

from __future__ import annotations

from typing import Any

import pytest

from mesh.models import Node, NodeStatus, Task, TaskStatus
from workspaces.models import SyncState, Workspace, WorkspaceFile, WorkspaceNode
from workspaces.services.sync import _reconcile_row
from workspaces.tests.test_services_sync import OLD, _end, _row, _sha, _task, setup  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _only_a_script(workspace: Workspace, node: Node) -> WorkspaceNode:
    Node.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    WorkspaceFile.objects.filter(workspace=workspace).exclude(path="a.txt").delete()
    WorkspaceFile.objects.filter(workspace=workspace).update(mode=0o755)
    return _row(workspace, node=node.pk, known={"a.txt": _sha(OLD)}, state=SyncState.SYNCING)


def test_a_mode_only_change_is_pushed_with_the_mode(user, setup, media) -> None:  # noqa: F811
    workspace, node = setup
    row = _only_a_script(workspace, node)
    _reconcile_row(row_id=row.pk)
    write = Task.objects.get(payload__action="write")
    assert (write.payload["rel"], write.payload["mode"]) == ("a.txt", 0o755)
    Task.objects.filter(pk=write.pk).update(
        status=TaskStatus.SUCCEEDED,
        result={"path": "a.txt", "size": len(OLD), "sha256": _sha(OLD), "mode": 0o755},
    )
    write.refresh_from_db()
    _end(write)
    row = WorkspaceNode.objects.get()
    assert (row.state, row.pending, row.known) == (
        SyncState.IN_SYNC,
        0,
        {"a.txt": _sha(OLD) + "+x"},
    )


def test_a_manifest_with_the_bit_is_in_sync_and_one_without_is_drift(user, setup) -> None:  # noqa: F811
    workspace, node = setup
    _only_a_script(workspace, node)
    _row(workspace, node=node.pk, known=None, last_known={"a.txt": _sha(OLD) + "+x"})
    payload = {"action": "manifest", "workspace": workspace.pk}
    entries = [["a.txt", len(OLD), 0o755, 0, _sha(OLD)]]
    _end(
        _task(
            workspace,
            node,
            user,
            payload=payload,
            status=TaskStatus.SUCCEEDED,
            result={"entries": entries},
        )
    )
    row = WorkspaceNode.objects.get()
    assert (row.state, row.drift) == (SyncState.IN_SYNC, [])
    assert not Task.objects.filter(payload__action="write").exists()

    # Someone ran `chmod -x` on the node: that is the node's own change, shown as drift.
    _row(workspace, node=node.pk, known=None)
    entries = [["a.txt", len(OLD), 0o644, 0, _sha(OLD)]]
    _end(
        _task(
            workspace,
            node,
            user,
            payload=payload,
            status=TaskStatus.SUCCEEDED,
            result={"entries": entries},
        )
    )
    row = WorkspaceNode.objects.get()
    assert row.state == SyncState.DRIFT
    assert row.drift == [
        {
            "path": "a.txt",
            "change": "modified",
            "sha256": _sha(OLD),
            "size": len(OLD),
            "mode": 0o644,
        }
    ]
