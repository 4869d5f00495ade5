"""Large node files coming into the mirror in ranged reads, on the hub: the ranges a transfer
asks for, each answered by the agent's own `files` skill on a real folder (the node's side,
in process), the whole checked before it is stored, a file changed mid-transfer never stored
torn, lost ranges asked again, a missed task end caught up by the sweep, range bytes dropped."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditEvent
from mesh import services as mesh_services
from mesh.agent.skills.files import FileLimits, FileSkillError, run_files
from mesh.agent.workspace import Workspace as NodeRoot
from mesh.models import Node, Task, TaskKind, TaskStatus
from mesh.models.tasks import OPEN_STATUSES
from sessions_app.models import ChatSession, SessionNode
from workspaces.models import (
    TransferPurpose,
    TransferState,
    Workspace,
    WorkspaceFile,
    WorkspaceNode,
    WorkspaceTransfer,
)
from workspaces.services import transfers as svc
from workspaces.services import workspace_configure
from workspaces.services.staging import STAGING
from workspaces.services.sync import _apply_watch, _dispatch_watch
from workspaces.storage import blob_name, mirror_storage

pytestmark = pytest.mark.django_db

RANGE = svc.RANGE_BYTES
SIZE = 5 * RANGE + 123  # six ranges, the last one short


@pytest.fixture
def world(user, staff_user, tmp_path: Path) -> dict[str, Any]:
    """alice's `node` workspace led by `lead` (folder proj), a second node `box`, and the
    lead's real folder on disk."""
    session = ChatSession.objects.create(owner=user, title="big")
    group = Group.objects.create(name="devs")
    group.user_set.add(user)
    nodes = {}
    for node_id in ("lead", "box"):
        node, _ = mesh_services.node_create(actor=staff_user, node_id=node_id, display_name=node_id)
        Node.objects.filter(pk=node.pk).update(capabilities={"files": True})
        node.refresh_from_db()
        mesh_services.node_grant(actor=staff_user, node=node, group=group)
        SessionNode.objects.create(session=session, node=node)
        nodes[node_id] = node
    workspace = workspace_configure(
        actor=user, session=session, source="node", node_id="lead", path="proj"
    )
    root = tmp_path / "lead-root"
    (root / "proj").mkdir(parents=True)
    row = WorkspaceNode.objects.create(workspace=workspace, node=nodes["lead"], known={})
    return {"workspace": workspace, "nodes": nodes, "root": root, "row": row, "user": user}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open_ranges() -> list[Task]:
    return list(
        Task.objects.filter(
            kind=TaskKind.FILES, payload__has_key="transfer", status__in=OPEN_STATUSES
        ).order_by("created_at", "pk")
    )


def _current_ranges() -> list[Task]:
    """The open ranges of the transfer's current generation."""
    generation = WorkspaceTransfer.objects.get().generation
    return [t for t in _open_ranges() if t.payload["generation"] == generation]


def _answer(task: Task, root: Path, *, status: str = TaskStatus.SUCCEEDED) -> None:
    """The node answers one range read with its real files skill; the task-end hook runs."""
    result: Any = None
    code = ""
    if status == TaskStatus.SUCCEEDED:
        try:
            result = run_files(NodeRoot(root), task.payload, FileLimits(max_read_bytes=RANGE))
        except FileSkillError as exc:  # what the agent reports as a failed task
            status, code = TaskStatus.FAILED, exc.code
    Task.objects.filter(pk=task.pk).update(status=status, result=result, error_code=code)
    svc.on_task_end(task_id=str(task.pk), kind=task.kind, payload=task.payload, status=status)


def _report(world: dict[str, Any], rel: str, data: bytes) -> None:
    """The lead's watch reports a file too large for one answer (what `watch._batch` sends)."""
    path = world["root"] / "proj" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    st = path.stat()
    change = {
        "op": "fetch",
        "path": rel,
        "size": len(data),
        "mode": 0o644,
        "mtime": st.st_mtime,
        "mtime_ns": st.st_mtime_ns,
        "sha256": _sha(data),
    }
    row = WorkspaceNode.objects.select_related("node", "workspace__session__owner").get(
        pk=world["row"].pk
    )
    _apply_watch(row, {"changes": [change], "more": False})
    row.save()


def _drain(world: dict[str, Any], *, limit: int = 200) -> None:
    for _ in range(limit):
        open_ranges = _open_ranges()
        if not open_ranges:
            return
        _answer(open_ranges[0], world["root"])
    raise AssertionError("the transfer never ended")


def _blob(workspace: Workspace, sha: str) -> bytes:
    with mirror_storage().open(blob_name(session_id=workspace.session_id, sha256=sha)) as fh:
        return fh.read()


def _staging() -> list[str]:
    try:
        return mirror_storage().listdir(STAGING)[1]
    except FileNotFoundError:
        return []


def test_a_large_file_comes_in_range_by_range_and_is_checked_before_it_is_stored(
    world, django_capture_on_commit_callbacks
) -> None:
    data = os.urandom(SIZE)
    _report(world, "data/big.bin", data)
    transfer = WorkspaceTransfer.objects.get()
    assert (transfer.purpose, transfer.state, transfer.node_path) == (
        TransferPurpose.WATCH,
        TransferState.RUNNING,
        "proj/data/big.bin",
    )
    first = _open_ranges()
    assert [t.payload["range"] for t in first] == [0, 1, 2, 3]  # a window, not all at once
    assert first[0].payload == {
        "action": "read",
        "path": "proj/data/big.bin",
        "offset": 0,
        "length": RANGE,
        "transfer": transfer.pk,
        "generation": 0,
        "range": 0,
    }
    owner = world["workspace"].session.owner_id
    assert {(t.requested_by_id, t.chat_session_id) for t in first} == {
        (owner, world["workspace"].session_id)
    }
    # Out of order is fine: each range lands at its own offset.
    _answer(first[2], world["root"])
    _answer(first[0], world["root"])
    assert not WorkspaceFile.objects.filter(path="data/big.bin").exists()  # not before all
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _drain(world)
    row = WorkspaceFile.objects.get(workspace=world["workspace"], path="data/big.bin")
    assert (row.size, row.sha256) == (SIZE, _sha(data))
    assert _blob(world["workspace"], row.sha256) == data
    assert callbacks  # the other nodes follow once committed
    assert WorkspaceTransfer.objects.get().state == TransferState.DONE
    # The lead holds it: the sync never pushes it back there.
    assert WorkspaceNode.objects.get(pk=world["row"].pk).known["data/big.bin"] == _sha(data)
    # No range's bytes are kept, and no staging file is left.
    ranges = Task.objects.filter(payload__transfer=transfer.pk)
    assert ranges.count() == 6
    assert not ranges.filter(result__has_key="content").exists()
    assert _staging() == []


def test_a_file_in_flight_is_known_to_the_next_watch(world) -> None:
    """A file being fetched is not reported again by the lead (unless it changes again)."""
    data = os.urandom(SIZE)
    _report(world, "big.bin", data)
    row = WorkspaceNode.objects.select_related("node", "workspace__session__owner").get(
        pk=world["row"].pk
    )
    _dispatch_watch(row)
    watch = Task.objects.get(payload__action="watch")
    assert watch.payload["known"]["big.bin"] == _sha(data)


def test_a_file_rewritten_mid_transfer_restarts_and_never_lands_torn(world) -> None:
    old, new = os.urandom(SIZE), os.urandom(SIZE)
    _report(world, "big.bin", old)
    first = _open_ranges()
    _answer(first[0], world["root"])
    path = world["root"] / "proj" / "big.bin"
    path.write_bytes(new)
    os.utime(path, ns=(1, 1))  # another mtime for certain
    _answer(first[1], world["root"])  # sees another mtime: a new generation
    transfer = WorkspaceTransfer.objects.get()
    assert (transfer.generation, transfer.restarts, transfer.done) == (1, 1, [])
    _drain(world)
    # Every range of the new generation is the new file's: the whole is not what was reported.
    transfer.refresh_from_db()
    assert (transfer.state, transfer.error) == (TransferState.DRIFT, "changed_during_transfer")
    assert not WorkspaceFile.objects.filter(path="big.bin").exists()
    assert _staging() == []
    # The watch reports the new version: it comes in whole.
    _report(world, "big.bin", new)
    _drain(world)
    row = WorkspaceFile.objects.get(path="big.bin")
    assert _blob(world["workspace"], row.sha256) == new and row.sha256 == _sha(new)


def test_a_newer_report_replaces_a_running_transfer(world) -> None:
    old, new = os.urandom(SIZE), os.urandom(SIZE + 7)
    _report(world, "big.bin", old)
    stale = _open_ranges()
    _answer(stale[0], world["root"])
    _report(world, "big.bin", new)
    assert WorkspaceTransfer.objects.get().generation == 1
    for task in stale[1:]:  # the old generation's ranges end: ignored, their bytes dropped
        _answer(task, world["root"])
    _drain(world)
    assert WorkspaceFile.objects.get(path="big.bin").sha256 == _sha(new)
    assert not Task.objects.filter(result__has_key="content").exists()


def test_a_delete_on_the_lead_stops_the_transfer(world) -> None:
    _report(world, "big.bin", os.urandom(SIZE))
    row = WorkspaceNode.objects.select_related("node", "workspace__session__owner").get(
        pk=world["row"].pk
    )
    _apply_watch(row, {"changes": [{"op": "delete", "path": "big.bin"}]})
    assert WorkspaceTransfer.objects.get().state == TransferState.DONE
    _drain(world)
    assert not WorkspaceFile.objects.filter(path="big.bin").exists()


def test_a_lost_range_is_asked_again_and_a_refused_one_ends_the_transfer(world) -> None:
    data = os.urandom(SIZE)
    _report(world, "big.bin", data)
    lost = _open_ranges()[1]
    _answer(lost, world["root"], status=TaskStatus.LOST)
    again = [t for t in _open_ranges() if t.payload["range"] == 1]
    assert len(again) == 1 and again[0].pk != lost.pk
    _drain(world)
    assert WorkspaceFile.objects.get(path="big.bin").sha256 == _sha(data)

    _report(world, "gone.bin", os.urandom(SIZE))
    (world["root"] / "proj" / "gone.bin").unlink()
    _drain(world)  # the node answers not_found: a real refusal, not retried
    transfer = WorkspaceTransfer.objects.get(path="gone.bin")
    assert (transfer.state, transfer.error) == (TransferState.DRIFT, "not_found")
    assert not WorkspaceFile.objects.filter(path="gone.bin").exists()


def test_refusals_before_any_range(world, settings) -> None:
    settings.WORKSPACE_MAX_FILE_BYTES = SIZE - 1
    _report(world, "big.bin", os.urandom(SIZE))
    assert not WorkspaceTransfer.objects.exists() and not _open_ranges()
    assert WorkspaceNode.objects.get(pk=world["row"].pk).drift == [
        {"path": "big.bin", "error": "workspace_file_too_large"}
    ]
    settings.WORKSPACE_MAX_FILE_BYTES = 10 * SIZE
    settings.WORKSPACE_MAX_BYTES = SIZE - 1
    _report(world, "big.bin", os.urandom(SIZE))
    assert not WorkspaceTransfer.objects.exists() and not _open_ranges()
    row = WorkspaceNode.objects.select_related("node", "workspace__session__owner").get(
        pk=world["row"].pk
    )
    for bad in ({"sha256": "nope"}, {"size": -1}, {"size": "5"}, {"sha256": None}):
        change = {"op": "fetch", "path": "x.bin", "size": 5, "sha256": "a" * 64, **bad}
        _apply_watch(row, {"changes": [change]})
        assert row.drift == [{"path": "x.bin", "error": "invalid_report"}]
    assert not WorkspaceTransfer.objects.exists()


def test_a_node_answer_that_does_not_fit_is_never_written(world) -> None:
    """A range answer with another offset, size or length than asked is the file changing (or
    a confused node): the generation restarts; nothing lands in the mirror from it."""
    data = os.urandom(SIZE)
    _report(world, "big.bin", data)
    for forged in (
        {"offset": 5},
        {"file_size": SIZE + 1},
        {"mtime_ns": "1"},
        {"content": "!!"},
        {"content": ""},
    ):
        current = _current_ranges()
        if not current:
            break
        task = current[0]
        result = run_files(NodeRoot(world["root"]), task.payload, FileLimits(max_read_bytes=RANGE))
        result.update(forged)
        Task.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCEEDED, result=result)
        svc.on_task_end(
            task_id=str(task.pk), kind=task.kind, payload=task.payload, status="succeeded"
        )
    transfer = WorkspaceTransfer.objects.get()
    assert (transfer.state, transfer.error) == (TransferState.DRIFT, "changed_during_transfer")
    assert not WorkspaceFile.objects.filter(path="big.bin").exists()
    assert _staging() == []


def test_a_node_with_a_smaller_read_limit_ends_the_transfer_with_a_clear_error(world) -> None:
    _report(world, "big.bin", os.urandom(SIZE))
    task = _open_ranges()[0]
    limits = FileLimits(max_read_bytes=RANGE // 2)  # the node's own `files.max_read_bytes`
    result = run_files(NodeRoot(world["root"]), task.payload, limits)
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCEEDED, result=result)
    svc.on_task_end(task_id=str(task.pk), kind=task.kind, payload=task.payload, status="succeeded")
    transfer = WorkspaceTransfer.objects.get()
    assert (transfer.state, transfer.error) == (TransferState.DRIFT, "node_read_limit")
    assert _staging() == [] and not Task.objects.filter(result__has_key="content").exists()


def test_the_sweep_catches_up_on_a_missed_task_end_and_drops_stale_bytes(world) -> None:
    data = os.urandom(SIZE)
    _report(world, "big.bin", data)
    ranges = _open_ranges()
    # The node answered, but the hub process died before the hooks ran.
    for task in ranges:
        result = run_files(NodeRoot(world["root"]), task.payload, FileLimits(max_read_bytes=RANGE))
        Task.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCEEDED, result=result)
    assert svc.transfers_sweep()["resumed"] == 0  # not stalled yet
    WorkspaceTransfer.objects.update(updated_at="2000-01-01T00:00:00Z")
    assert svc.transfers_sweep()["resumed"] == 1
    transfer = WorkspaceTransfer.objects.get()
    assert sorted(transfer.done) == [0, 1, 2, 3]
    assert not Task.objects.filter(result__has_key="content").exists()
    _drain(world)
    assert WorkspaceFile.objects.get(path="big.bin").sha256 == _sha(data)
    # Bytes of a transfer that ended, and a staging file nothing owns, go at the next sweep.
    orphan = Task.objects.filter(payload__transfer=transfer.pk).first()
    Task.objects.filter(pk=orphan.pk).update(result={"content": "eA=="})
    os.makedirs(mirror_storage().path(STAGING), exist_ok=True)
    stray = Path(mirror_storage().path(f"{STAGING}/t999-g0"))
    stray.write_bytes(b"x")
    os.utime(stray, (1, 1))
    swept = svc.transfers_sweep()
    assert (swept["results_cleared"], swept["staging_removed"]) == (1, 1)
    assert _staging() == []


def test_a_large_browser_download_on_another_node_comes_in_ranges(
    world, django_capture_on_commit_callbacks
) -> None:
    from workspaces.selectors import workspace_downloads_target
    from workspaces.services.downloads import on_task_end as downloads_end

    box, user, workspace = world["nodes"]["box"], world["user"], world["workspace"]
    WorkspaceNode.objects.create(workspace=workspace, node=box, known={})
    data = os.urandom(SIZE)
    folder = world["root"] / "sessions" / str(workspace.session_id) / "downloads"
    folder.mkdir(parents=True)
    (folder / "data.zip").write_bytes(data)
    target = workspace_downloads_target(session_id=workspace.session_id, node=box)
    assert target["max_bytes"] >= SIZE
    browser = Task.objects.create(
        node=box,
        requested_by=user,
        chat_session_id=workspace.session_id,
        kind=TaskKind.BROWSER,
        payload={"action": "click", "downloads": target},
        status=TaskStatus.SUCCEEDED,
        result={
            "downloads": [
                {"workspace_path": "downloads/data.zip", "bytes": SIZE, "sha256": _sha(data)}
            ]
        },
    )
    downloads_end(
        task_id=str(browser.pk), kind=browser.kind, payload=browser.payload, status="succeeded"
    )
    transfer = WorkspaceTransfer.objects.get()
    assert (transfer.purpose, transfer.node_id) == (TransferPurpose.DOWNLOAD, box.pk)
    assert transfer.node_path == f"sessions/{workspace.session_id}/downloads/data.zip"
    _drain(world)  # box's root is the same folder here
    row = WorkspaceFile.objects.get(path="downloads/data.zip")
    assert row.sha256 == _sha(data) and _blob(workspace, row.sha256) == data
    assert WorkspaceNode.objects.get(workspace=workspace, node=box).known == {
        "downloads/data.zip": _sha(data)
    }
    event = AuditEvent.objects.get(action="workspace.write", details__source="browser_download")
    assert event.details["node_id"] == "box" and event.details["size"] == SIZE


def test_a_started_transfer_is_cancelled_by_a_later_change(world) -> None:  # type: ignore[no-untyped-def]
    """transfer_start asks for the ranges; the same bytes again leave it alone; transfer_cancel
    (the file was deleted or became small) ends it; a malformed report starts nothing."""
    data = os.urandom(2 * RANGE + 5)
    (world["root"] / "proj" / "a.bin").write_bytes(data)
    started = svc.transfer_start(
        workspace=world["workspace"],
        node=world["nodes"]["lead"],
        path="a.bin",
        node_path="proj/a.bin",
        purpose=TransferPurpose.WATCH,
        sha256=_sha(data),
        size=len(data),
    )
    assert started.state == TransferState.RUNNING and _current_ranges()
    again = svc.transfer_start(
        workspace=world["workspace"],
        node=world["nodes"]["lead"],
        path="a.bin",
        node_path="proj/a.bin",
        purpose=TransferPurpose.WATCH,
        sha256=_sha(data),
        size=len(data),
    )
    assert again.pk == started.pk
    svc.transfer_cancel(workspace=world["workspace"], path="a.bin")
    started.refresh_from_db()
    assert (started.state, started.error) == (TransferState.DONE, "superseded")
    bad = {"op": "fetch", "path": "b.bin", "size": -1, "sha256": "nope"}
    assert svc.transfer_start_reported(row=world["row"], path="b.bin", change=bad) == (
        "invalid_report"
    )
    assert not WorkspaceTransfer.objects.filter(path="b.bin").exists()


def test_staging_files_are_private_written_at_offsets_hashed_and_swept(world) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from workspaces.services import staging

    name = staging.staging_name(transfer_id=7, generation=2)
    assert name == "t7-g2"
    path = staging.staging_path(transfer_id=7, generation=2)
    assert path.endswith(f"{STAGING}/{name}")
    staging.staging_write(transfer_id=7, generation=2, offset=3, data=b"def")
    staging.staging_write(transfer_id=7, generation=2, offset=0, data=b"abc")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert staging.staging_sha256(transfer_id=7, generation=2) == (_sha(b"abcdef"), 6)
    staging.staging_write(transfer_id=8, generation=1, offset=0, data=b"")  # created empty
    future = timezone.now() + timedelta(minutes=1)
    # Only files no running transfer names, written before the cutoff, go.
    assert staging.staging_sweep(current={name}, cutoff=future) == 1
    assert os.path.exists(path)
    staging.staging_drop(transfer_id=7, generation=2)
    staging.staging_drop(transfer_id=7, generation=2)  # twice: harmless
    assert not os.path.exists(path)
