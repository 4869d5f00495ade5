"""Bringing a node file of any size (up to the per-file cap) into the hub mirror.

One result message carries at most a few MiB, so a large file travels as ranged `files` reads
(`offset`, `length`) dispatched through the task journal, `WINDOW` in flight at once. Each range
is written at its offset into a staging file under the mirror's storage as its result arrives
(never the whole file in memory), and its content is then dropped from the task row. When every
range is in, the staging file is hashed against the sha256 the node reported (watch or browser
download) and only then stored with `mirror_store` and entered in the manifest.

The state is a `WorkspaceTransfer` row (several hub processes; a restart resumes from it). A
range that sees another file size or mtime than the first range of its generation means the file
changed meanwhile: the transfer restarts (new generation, older ranges ignored) a few times, and
a final hash that differs ends it as drift. Either way no torn file ever reaches the mirror. For
a lead's file the watch then reports the new version, which starts a fresh transfer.

Lock order (as elsewhere in the app): Workspace row, then WorkspaceNode row, then the transfer.
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import reset_queries, transaction
from django.utils import timezone

from accounts.services.audit import audit_record
from cortex.errors import CortexError
from mesh.models import Node, Task, TaskKind, TaskStatus
from mesh.models.tasks import OPEN_STATUSES
from mesh.services.tasks import task_dispatch
from workspaces.errors import WorkspaceFileTooLarge, WorkspaceTooLarge
from workspaces.models import (
    TransferPurpose,
    TransferState,
    Workspace,
    WorkspaceFile,
    WorkspaceNode,
    WorkspaceSource,
    WorkspaceTransfer,
)
from workspaces.selectors import workspace_total_bytes
from workspaces.services.files import manifest_put, mirror_store
from workspaces.services.staging import (
    staging_drop,
    staging_name,
    staging_path,
    staging_sha256,
    staging_sweep,
    staging_write,
)
from workspaces.storage import SHA256

logger = logging.getLogger("cortex.workspaces")

#: The payload key of a range read (its value: the transfer's pk).
TRANSFER = "transfer"
#: Bytes per range: the agent's default read limit (`FileLimits.max_read_bytes`).
RANGE_BYTES = 1024 * 1024
#: Range reads in flight at once per transfer.
WINDOW = 4
RANGE_TIMEOUT = 120.0
#: Restarts after the file changed mid-transfer, and re-sent ranges (lost, timed out), at most.
MAX_RESTARTS = 3
MAX_RETRIES = 8
#: A running transfer with nothing in flight for this long is resumed by the sweep.
STALL_S = 10
#: How far back the sweep looks for range bytes to drop (it runs every few seconds).
RESULT_SCAN_HOURS = 6


def _ranges(size: int) -> int:
    return max(1, -(-size // RANGE_BYTES))


def _open_ranges(transfer: WorkspaceTransfer) -> Any:
    return Task.objects.filter(
        node_id=transfer.node_id,
        kind=TaskKind.FILES,
        payload__transfer=transfer.pk,
        payload__generation=transfer.generation,
        status__in=OPEN_STATUSES,
    )


def _dispatch_range(transfer: WorkspaceTransfer, index: int) -> None:
    workspace = transfer.workspace
    offset = index * RANGE_BYTES
    task_dispatch(
        actor=workspace.session.owner,
        node=transfer.node,
        kind=TaskKind.FILES,
        payload={
            "action": "read",
            "path": transfer.node_path,
            "offset": offset,
            "length": min(RANGE_BYTES, max(transfer.size - offset, 0)),
            TRANSFER: transfer.pk,
            "generation": transfer.generation,
            "range": index,
        },
        timeout=RANGE_TIMEOUT,
        chat_session_id=workspace.session_id,
    )


def _pump(transfer: WorkspaceTransfer) -> None:
    """Keep up to WINDOW ranges in flight (the next ones never sent yet)."""
    total = _ranges(transfer.size)
    room = WINDOW - _open_ranges(transfer).count()
    while room > 0 and transfer.next_range < total:
        _dispatch_range(transfer, transfer.next_range)
        transfer.next_range += 1
        room -= 1


def _end(transfer: WorkspaceTransfer, *, state: str, error: str = "") -> None:
    from workspaces.services.sync import workspace_sync_soon

    staging_drop(transfer_id=transfer.pk, generation=transfer.generation)
    transfer.state, transfer.error = state, error[:64]
    transfer.save(update_fields=["state", "error", "updated_at"])
    workspace_sync_soon(workspace_id=transfer.workspace_id)  # its node's `pending` is one less
    if state == TransferState.DRIFT:
        logger.info(
            "transfer of %s (workspace %s) ended: %s", transfer.path, transfer.workspace_id, error
        )


def _reset(transfer: WorkspaceTransfer) -> None:
    """A new generation from the first range on (older ranges are ignored when they end)."""
    staging_drop(transfer_id=transfer.pk, generation=transfer.generation)
    transfer.generation += 1
    transfer.next_range, transfer.done = 0, []
    transfer.file_size = transfer.file_mtime_ns = None
    transfer.state, transfer.error = TransferState.RUNNING, ""


def _check_caps(workspace: Workspace, path: str, size: int) -> None:
    cap = int(settings.WORKSPACE_MAX_FILE_BYTES)
    if size > cap:
        raise WorkspaceFileTooLarge(f"The file is larger than the per-file limit of {cap} bytes.")
    current = WorkspaceFile.objects.filter(workspace=workspace, path=path).first()
    total = workspace_total_bytes(workspace=workspace) - (current.size if current else 0) + size
    if total > int(settings.WORKSPACE_MAX_BYTES):
        raise WorkspaceTooLarge("The workspace would exceed its size limit.")


def transfer_start(
    *,
    workspace: Workspace,
    node: Node,
    path: str,
    node_path: str,
    purpose: str,
    sha256: str,
    size: int,
    mode: int = 0o644,
) -> WorkspaceTransfer:
    """Bring `node_path` on `node` (`sha256`, `size` bytes) into the mirror as `path`; a running
    transfer of the same bytes is left alone, any other one for `path` is replaced. Refused
    over the caps (WorkspaceFileTooLarge, WorkspaceTooLarge) before any range is asked for."""
    _check_caps(workspace, path, size)
    with transaction.atomic():
        transfer = (
            WorkspaceTransfer.objects.select_for_update()
            .select_related("workspace__session__owner", "node")
            .filter(workspace=workspace, path=path)
            .first()
        )
        if (
            transfer is not None
            and transfer.state == TransferState.RUNNING
            and (transfer.node_id, transfer.sha256, transfer.size) == (node.pk, sha256, size)
            and transfer.node_path == node_path
        ):
            return transfer
        if transfer is None:
            transfer = WorkspaceTransfer(workspace=workspace, path=path)
        else:
            _reset(transfer)
        transfer.node, transfer.node_path, transfer.purpose = node, node_path, purpose
        transfer.sha256, transfer.size, transfer.mode = sha256, size, mode & 0o777
        transfer.restarts = transfer.retries = 0
        transfer.full_clean(exclude=["workspace", "node"], validate_constraints=False)
        transfer.save()
        transfer.workspace = workspace
        _pump(transfer)
        transfer.save(update_fields=["next_range", "updated_at"])
    return transfer


def transfer_cancel(*, workspace: Workspace, path: str) -> None:
    """The file at `path` changed in another way (deleted, small again): stop fetching it."""
    for transfer in WorkspaceTransfer.objects.select_for_update().filter(
        workspace=workspace, path=path, state=TransferState.RUNNING
    ):
        _end(transfer, state=TransferState.DONE, error="superseded")


def transfer_start_reported(*, row: WorkspaceNode, path: str, change: dict[str, Any]) -> str:
    """Start fetching a file the lead's watch reported as too large for one answer; returns
    the problem ("" when started)."""
    sha, size, mode = change.get("sha256"), _int(change.get("size")), _int(change.get("mode"))
    if not isinstance(sha, str) or not SHA256.fullmatch(sha) or size is None or size < 0:
        return "invalid_report"
    workspace = row.workspace
    folder = workspace.path or "."
    try:
        transfer_start(
            workspace=workspace,
            node=row.node,
            path=path,
            node_path=path if folder == "." else f"{folder}/{path}",
            purpose=TransferPurpose.WATCH,
            sha256=sha,
            size=size,
            mode=mode if mode is not None else 0o644,
        )
    except CortexError as exc:
        return exc.code
    return ""


def _clear_result(task_id: Any) -> None:
    """A range's bytes are not kept beyond use: only its bounds stay on the task row."""
    row = Task.objects.filter(pk=task_id).values_list("result", flat=True).first()
    if isinstance(row, dict) and "content" in row:
        kept = {k: row[k] for k in ("offset", "size", "file_size", "mtime_ns") if k in row}
        Task.objects.filter(pk=task_id).update(result=kept)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _write_range(transfer: WorkspaceTransfer, index: int, result: Any) -> str:
    """Write one range at its offset; else why not: `changed` (the file changed, or the answer
    is malformed) or `short` (fewer bytes than asked from an unchanged file: the node's read
    limit is below RANGE_BYTES)."""
    if not isinstance(result, dict):
        return "changed"
    offset = index * RANGE_BYTES
    want = min(RANGE_BYTES, transfer.size - offset)
    file_size, mtime_ns = _int(result.get("file_size")), _int(result.get("mtime_ns"))
    if _int(result.get("offset")) != offset or file_size != transfer.size or mtime_ns is None:
        return "changed"
    if transfer.file_size is None:
        transfer.file_size, transfer.file_mtime_ns = file_size, mtime_ns
    elif (transfer.file_size, transfer.file_mtime_ns) != (file_size, mtime_ns):
        return "changed"
    try:
        data = base64.b64decode(str(result.get("content", "")), validate=True)
    except (binascii.Error, ValueError):
        return "changed"
    if len(data) != want:
        return "short" if 0 < len(data) < want and result.get("size") == len(data) else "changed"
    staging_write(transfer_id=transfer.pk, generation=transfer.generation, offset=offset, data=data)
    return ""


def _still_wanted(transfer: WorkspaceTransfer) -> bool:
    """A lead's file is wanted while that node still leads the workspace at the same folder."""
    workspace = transfer.workspace
    if workspace.source == WorkspaceSource.NONE:
        return False
    if transfer.purpose != TransferPurpose.WATCH:
        return True
    folder = workspace.path or "."
    expected = transfer.path if folder == "." else f"{folder}/{transfer.path}"
    return (
        workspace.source == WorkspaceSource.NODE
        and workspace.lead_node_id == transfer.node_id
        and transfer.node_path == expected
    )


def _finish(transfer: WorkspaceTransfer, row: WorkspaceNode | None) -> None:
    """Every range is in: check the whole, then store it and enter it in the manifest."""
    from workspaces.services.downloads import _holds
    from workspaces.services.sync import _version

    workspace = transfer.workspace
    if transfer.size == 0:
        staging_write(transfer_id=transfer.pk, generation=transfer.generation, offset=0, data=b"")
    sha, size = staging_sha256(transfer_id=transfer.pk, generation=transfer.generation)
    if (sha, size) != (transfer.sha256, transfer.size):
        _end(transfer, state=TransferState.DRIFT, error="changed_during_transfer")
        return
    if not _still_wanted(transfer):
        _end(transfer, state=TransferState.DONE, error="superseded")
        return
    with open(staging_path(transfer_id=transfer.pk, generation=transfer.generation), "rb") as fh:
        mirror_store(session_id=workspace.session_id, body=fh, sha256=sha)
    current = WorkspaceFile.objects.filter(workspace=workspace, path=transfer.path).first()
    if transfer.purpose == TransferPurpose.DOWNLOAD and current and current.sha256 != sha:
        _end(transfer, state=TransferState.DONE, error="superseded")  # the workspace's file wins
        return
    try:
        with transaction.atomic():
            manifest_put(
                workspace=workspace,
                path=transfer.path,
                size=size,
                sha256=sha,
                mode=transfer.mode if transfer.purpose == TransferPurpose.WATCH else None,
            )
    except CortexError as exc:  # over the workspace cap, or a file/folder clash
        _end(transfer, state=TransferState.DRIFT, error=exc.code)
        return
    if transfer.purpose == TransferPurpose.DOWNLOAD:
        audit_record(
            actor=workspace.session.owner,
            action="workspace.write",
            target_type="session",
            target_id=workspace.session_id,
            details={
                "path": transfer.path,
                "size": size,
                "sha256": sha,
                "source": "browser_download",
                "node_id": transfer.node.node_id,
            },
        )
        if row is not None:
            _holds(row, path=transfer.path, sha=sha)
    elif row is not None and row.known is not None:  # the lead holds it: never pushed back
        row.known[transfer.path] = _version(sha, transfer.mode)
        row.save(update_fields=["known", "updated_at"])
    _end(transfer, state=TransferState.DONE)  # the other nodes follow once committed


def _locked(transfer_id: int) -> tuple[WorkspaceTransfer | None, WorkspaceNode | None]:
    """The transfer and its node's sync row, locked in the app's order (inside an atomic)."""
    found = WorkspaceTransfer.objects.filter(pk=transfer_id).values_list("workspace_id", "node_id")
    ids = found.first()
    if ids is None:
        return None, None
    Workspace.objects.select_for_update().filter(pk=ids[0]).first()
    row = (
        WorkspaceNode.objects.select_for_update()
        .filter(workspace_id=ids[0], node_id=ids[1])
        .first()
    )
    transfer = (
        WorkspaceTransfer.objects.select_for_update()
        .select_related("workspace__session__owner", "node")
        .filter(pk=transfer_id)
        .first()
    )
    return transfer, row


def _range_ended(transfer: WorkspaceTransfer, task: Task, index: int) -> None:
    """Apply one range task's end to its (locked, running) transfer."""
    total = _ranges(transfer.size)
    if not 0 <= index < total or index in transfer.done:
        return
    if task.status == TaskStatus.SUCCEEDED:
        result = Task.objects.filter(pk=task.pk).values_list("result", flat=True).first()
        problem = _write_range(transfer, index, result)
        if problem == "short":  # asking again gets no more: tell the person why
            _end(transfer, state=TransferState.DRIFT, error="node_read_limit")
            return
        if problem:
            transfer.restarts += 1
            if transfer.restarts > MAX_RESTARTS:
                _end(transfer, state=TransferState.DRIFT, error="changed_during_transfer")
                return
            restarts = transfer.restarts
            _reset(transfer)
            transfer.restarts = restarts
        else:
            transfer.done = sorted({*transfer.done, index})
    elif task.status == TaskStatus.FAILED:  # the node refused or failed: not worth repeating
        _end(transfer, state=TransferState.DRIFT, error=task.error_code or "transfer_failed")
        return
    else:  # lost, timed out, cancelled: ask again
        transfer.retries += 1
        if transfer.retries > MAX_RETRIES:
            _end(transfer, state=TransferState.DRIFT, error="transfer_failed")
            return
        _dispatch_range(transfer, index)


def _advance(transfer_id: int, task_ids: list[Any]) -> None:
    with transaction.atomic():
        transfer, row = _locked(transfer_id)
        if transfer is None:  # gone with its workspace: only the bytes to drop
            for task_id in task_ids:
                _clear_result(task_id)
            return
        for task in Task.objects.filter(pk__in=task_ids).only(
            "id", "status", "error_code", "payload", "node_id", "chat_session_id", "requested_by_id"
        ):
            payload = task.payload if isinstance(task.payload, dict) else {}
            if (
                transfer.state == TransferState.RUNNING
                and payload.get("generation") == transfer.generation
                and task.node_id == transfer.node_id
                and task.chat_session_id == transfer.workspace.session_id
                and task.requested_by_id == transfer.workspace.session.owner_id
                and isinstance(payload.get("range"), int)
            ):
                _range_ended(transfer, task, payload["range"])
            _clear_result(task.pk)
        if transfer.state != TransferState.RUNNING:
            return
        if len(transfer.done) >= _ranges(transfer.size):
            _finish(transfer, row)
            return
        _pump(transfer)
        transfer.save()


def on_task_end(*, task_id: str, kind: str, payload: Any, status: str) -> None:
    """A range read ended: write it, ask for the next ones, finish when all are in."""
    if kind != TaskKind.FILES or not isinstance(payload, dict):
        return
    transfer_id = payload.get(TRANSFER)
    if not isinstance(transfer_id, int) or isinstance(transfer_id, bool):
        return
    try:
        _advance(transfer_id, [task_id])
    finally:
        if settings.DEBUG:
            # Under DEBUG each connection logs its last 9,000 statements, the range's 1.4 MB
            # result among them (no request ever resets the log of a gRPC thread): the bytes
            # would stay in memory long after use.
            reset_queries()


def transfers_sweep() -> dict[str, int]:
    """Resume transfers a restart or a missed task-end left idle; drop range bytes and staging
    files nothing uses any more."""
    resumed = 0
    stalled = timezone.now() - timedelta(seconds=STALL_S)
    for transfer in WorkspaceTransfer.objects.filter(
        state=TransferState.RUNNING, updated_at__lt=stalled
    ):
        if _open_ranges(transfer).exists():
            continue
        ended = list(
            Task.objects.filter(
                node_id=transfer.node_id,
                kind=TaskKind.FILES,
                payload__transfer=transfer.pk,
                payload__generation=transfer.generation,
            ).values_list("pk", flat=True)
        )
        _advance(transfer.pk, ended)  # what the task-end hooks missed
        with transaction.atomic():
            locked, _row = _locked(transfer.pk)
            if locked is None or locked.state != TransferState.RUNNING:
                continue
            sent = {
                p.get("range")
                for p in Task.objects.filter(
                    node_id=locked.node_id,
                    kind=TaskKind.FILES,
                    payload__transfer=locked.pk,
                    payload__generation=locked.generation,
                    status__in=OPEN_STATUSES,
                ).values_list("payload", flat=True)
            }
            for index in range(locked.next_range):
                if index not in locked.done and index not in sent:
                    _dispatch_range(locked, index)
            _pump(locked)
            locked.save()
            resumed += 1
    cleared = 0
    recent = timezone.now() - timedelta(hours=RESULT_SCAN_HOURS)
    for pk, payload in (
        Task.objects.filter(
            kind=TaskKind.FILES,
            created_at__gte=recent,  # older ones were seen by earlier sweeps
            payload__has_key=TRANSFER,
            result__has_key="content",
        )
        .exclude(status__in=OPEN_STATUSES)
        .values_list("pk", "payload")
    ):
        live = WorkspaceTransfer.objects.filter(
            pk=payload.get(TRANSFER),
            state=TransferState.RUNNING,
            generation=payload.get("generation"),
        ).exists()
        if not live:
            _clear_result(pk)
            cleared += 1
    current = {
        staging_name(transfer_id=pk, generation=generation)
        for pk, generation in WorkspaceTransfer.objects.filter(
            state=TransferState.RUNNING
        ).values_list("pk", "generation")
    }
    removed = staging_sweep(current=current, cutoff=timezone.now() - timedelta(seconds=STALL_S))
    return {"resumed": resumed, "results_cleared": cleared, "staging_removed": removed}
