"""What the mirror's ignore files exclude (git's rules, nested files and `!` included) is a node's
own: never drift, never deleted there; everything else still is."""

from __future__ import annotations

import io
from typing import Any

import pytest

from mesh.models import Node, NodeStatus, Task, TaskStatus
from workspaces.models import SyncState, Workspace, WorkspaceFile, WorkspaceNode
from workspaces.selectors import workspace_ignore_rules
from workspaces.services import workspace_file_write
from workspaces.tests.test_services_sync import OLD, _end, _row, _sha, _task, setup  # noqa: F401

pytestmark = pytest.mark.django_db

IGNORES = {
    ".gitignore": b"__pycache__/\n*.o\n!keep.o\n",
    "sub/.gitignore": b"local/\n/only-here.txt\n",
}


def _mirror_with_ignores(user: Any, workspace: Workspace) -> list[list[Any]]:
    WorkspaceFile.objects.filter(workspace=workspace).exclude(path="a.txt").delete()
    for path, text in IGNORES.items():
        workspace_file_write(
            actor=user, session=workspace.session, path=path, body=io.BytesIO(text)
        )
    return [
        [row.path, row.size, 0o644, 0, row.sha256]
        for row in WorkspaceFile.objects.filter(workspace=workspace)
    ]


def _manifest(user: Any, workspace: Workspace, node: Node, entries: list[list[Any]]) -> None:
    payload = {"action": "manifest", "workspace": workspace.pk}
    result = {"entries": entries}
    _end(_task(workspace, node, user, payload=payload, status=TaskStatus.SUCCEEDED, result=result))


def test_ignored_files_on_a_node_are_not_drift(user, setup) -> None:  # noqa: F811
    workspace, node = setup
    Node.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    mirror = _mirror_with_ignores(user, workspace)
    # A file the workspace holds is synced even where a pattern ignores it (written on purpose).
    workspace_file_write(actor=user, session=workspace.session, path="held.o", body=io.BytesIO(OLD))
    mirror.append(["held.o", len(OLD), 0o644, 0, _sha(OLD)])
    _row(workspace, node=node.pk, last_known={p[0]: p[4] for p in mirror})
    extra = ["__pycache__/m.pyc", "deep/__pycache__/n.pyc", "x.o", "sub/local/y", "keep.o"]
    extra += ["sub/only-here.txt", "sub/deeper/only-here.txt"]
    entries = [e for e in mirror if e[0] != "held.o"] + [["held.o", 3, 0o644, 0, _sha(b"new")]]
    entries += [[p, 1, 0o644, 0, _sha(p.encode())] for p in extra]
    _manifest(user, workspace, node, entries)
    row = WorkspaceNode.objects.get()
    assert row.state == SyncState.DRIFT
    assert [e["path"] for e in row.drift] == ["held.o", "keep.o", "sub/deeper/only-here.txt"]


def test_ignored_files_on_a_node_are_left_there(user, setup) -> None:  # noqa: F811
    workspace, node = setup
    Node.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    mirror = _mirror_with_ignores(user, workspace)
    ignored = ["__pycache__/m.pyc", "x.o", "sub/local/y", "sub/only-here.txt"]
    stale = ["gone.txt"]  # the hub put it there once and has deleted it since: it goes
    last = {p[0]: p[4] for p in mirror} | {p: _sha(p.encode()) for p in ignored + stale}
    _row(workspace, node=node.pk, last_known=last)
    entries = mirror + [[p, 1, 0o644, 0, _sha(p.encode())] for p in ignored + stale]
    _manifest(user, workspace, node, entries)
    row = WorkspaceNode.objects.get()
    deletes = Task.objects.filter(payload__action="delete").values_list("payload__rel", flat=True)
    assert list(deletes) == ["gone.txt"]
    assert (row.state, row.pending, row.drift) == (SyncState.SYNCING, 1, [])


def test_the_hubs_rules_are_the_mirrors_ignore_files(user, setup) -> None:  # noqa: F811
    workspace, _ = setup
    _mirror_with_ignores(user, workspace)
    rules = workspace_ignore_rules(workspace=workspace)
    assert rules.ignored("a/b/__pycache__/c.pyc") and rules.ignored("sub/local/z")
    assert not rules.ignored("keep.o") and not rules.ignored("local/z")
    assert rules.ignored(".git/config") and not rules.ignored("a.txt")
    assert not workspace_ignore_rules(workspace=Workspace()).ignored("x.o")
