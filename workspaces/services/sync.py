"""Keeping attached nodes in step with the hub mirror, through the task journal.

Per node, the hub keeps a row (`WorkspaceNode`): what it believes the node holds (`known`,
path -> sha256), the transfers under way (`pending`) and the state. Nothing lives in memory:

- `known` is null after attach, reconnect or a lost transfer: the hub asks the node for a
  manifest (a `files` `manifest` task; the result is the node's files with their hashes).
- `known` holds versions: the sha256, `+x` when executable (`_version`: the executable bit is
  synced, a mode-only change moves the file again).
- With `known` set, only what differs moves: small files travel many to a task, as a `files`
  `write_many` whose pushed blob is a tar bundle (up to `BUNDLE_BYTES` / `BUNDLE_FILES`; the
  node checks every member before writing any, then writes each to a temporary name and
  renames it); a larger file gets its own `files` write (streamed as FileChunks, written to a
  temporary name and renamed); a `files` delete per file the mirror no longer has. Tasks
  carry `workspace` in their payload and the session id, so their end (`on_task_end`) updates
  `known` and re-runs the reconciliation.
- A file the mirror does not hold and its `.gitignore` / `.cortexignore` files ignore (git's
  rules, `mesh.agent.ignore`, the module the lead's watcher filters with) is a node's own: never
  drift, never deleted there. A file the mirror holds is synced, ignored or not.
- The sweep (every few seconds in each gRPC process) marks nodes offline, asks returning nodes
  for a manifest, creates rows for newly attached nodes and re-runs a reconciliation that a
  crash or restart interrupted. Every step is idempotent: in-flight tasks are never repeated.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import io
import logging
import tarfile
import tempfile
import zlib
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from cortex.errors import CortexError, NotFound, ValidationFailed
from mesh.models import Node, NodeStatus, Task, TaskKind, TaskStatus
from mesh.models.tasks import OPEN_STATUSES
from mesh.services.file_push import file_push
from mesh.services.tasks import task_dispatch
from sessions_app.models import SessionNode
from workspaces.errors import WorkspaceDriftNotFetched, WorkspaceNoDrift
from workspaces.models import SyncState, Workspace, WorkspaceFile, WorkspaceNode, WorkspaceSource
from workspaces.selectors import (
    workspace_ignore_rules,
    workspace_node_folder,
    workspace_path,
    workspace_transfers_known,
    workspace_transfers_pending,
)
from workspaces.services.files import manifest_put, mirror_store
from workspaces.storage import blob_name, mirror_storage, session_prefix

logger = logging.getLogger("cortex.workspaces")

SYNC_TIMEOUT = 600.0
#: Seconds a lead's watch waits for a change before it answers "nothing" (and is sent again).
WATCH_WAIT_S = 20
#: Drifted files up to this size are fetched from the node (to diff and to promote).
DRIFT_FETCH_BYTES = 1024 * 1024
#: Text diffs are made for files up to this size.
DIFF_BYTES = 256 * 1024
BLOB_GRACE_S = 600
#: Files up to this size travel in bundles; a bundle holds up to BUNDLE_BYTES / BUNDLE_FILES.
BUNDLE_FILE_BYTES = 1024 * 1024
BUNDLE_BYTES = 8 * 1024 * 1024
BUNDLE_FILES = 500
#: A bundle is built in memory up to this size, on disk beyond.
_BUNDLE_SPOOL = 16 * 1024 * 1024
#: Lost, timed out or cancelled: the node did not refuse, so ask it again (manifest).
_RETRY_STATUSES = (TaskStatus.LOST, TaskStatus.TIMED_OUT, TaskStatus.CANCELLED)


def _version(sha256: str, mode: Any = 0o644) -> str:
    """What the hub compares per file: the sha256, with `+x` when the owner's executable bit is
    set (the bit is synced: a script made executable on the lead runs on every node)."""
    executable = isinstance(mode, int) and not isinstance(mode, bool) and mode & 0o100
    return f"{sha256}+x" if executable else sha256


def _mirror_versions(workspace: Workspace) -> dict[str, str]:
    rows = WorkspaceFile.objects.filter(workspace=workspace).values_list("path", "sha256", "mode")
    return {path: _version(sha, mode) for path, sha, mode in rows}


def _open_tasks(row: WorkspaceNode) -> Any:
    return Task.objects.filter(
        node_id=row.node_id,
        kind=TaskKind.FILES,
        chat_session_id=row.workspace.session_id,
        payload__workspace=row.workspace_id,
        status__in=OPEN_STATUSES,
    )


def _forget(row: WorkspaceNode) -> None:
    """Ask the node again next time; remember what it held for the drift check."""
    if row.known is not None:
        row.last_known = row.known
    row.known = None


def _is_lead(row: WorkspaceNode) -> bool:
    workspace = row.workspace
    return workspace.source == WorkspaceSource.NODE and workspace.lead_node_id == row.node_id


def _online(node: Node) -> bool:
    return node.status in (NodeStatus.ONLINE, NodeStatus.BUSY)


def _dispatch_manifest(row: WorkspaceNode) -> None:
    workspace = row.workspace
    task_dispatch(
        actor=workspace.session.owner,
        node=row.node,
        kind=TaskKind.FILES,
        payload={
            "action": "manifest",
            "path": workspace_node_folder(workspace=workspace, node_pk=row.node_id),
            "workspace": workspace.pk,
        },
        timeout=SYNC_TIMEOUT,
        chat_session_id=workspace.session_id,
    )


def _dispatch_watch(row: WorkspaceNode) -> None:
    workspace = row.workspace
    rows = list(
        WorkspaceFile.objects.filter(workspace=workspace).values_list("path", "sha256", "mode")
    )
    # Large files on their way in (ranged reads) count as known: not reported again unless
    # they change again.
    rows += workspace_transfers_known(workspace=workspace)
    mirror = {path: sha for path, sha, _ in rows}
    executable = sorted(path for path, sha, mode in rows if _version(sha, mode) != sha)
    task_dispatch(
        actor=workspace.session.owner,
        node=row.node,
        kind=TaskKind.FILES,
        payload={
            "action": "watch",
            "path": workspace.path or ".",
            "workspace": workspace.pk,
            "known": mirror,
            "executable": executable,
            "wait": WATCH_WAIT_S,
        },
        timeout=WATCH_WAIT_S + 60,
        chat_session_id=workspace.session_id,
    )


def _apply_watch(row: WorkspaceNode, result: Any) -> None:
    """Store what the lead reported in the mirror (each file checked against its sha256); a
    file too large for one answer is fetched in ranges (`transfers`)."""
    from workspaces.services.transfers import transfer_cancel, transfer_start_reported

    workspace = row.workspace
    problems: list[dict[str, Any]] = []
    changes = result.get("changes", []) if isinstance(result, dict) else []
    for change in changes if isinstance(changes, list) else []:
        if not isinstance(change, dict):
            continue
        try:
            path = workspace_path(path=change.get("path"))
        except CortexError:
            continue  # the lead's path rule refused it too; never stored
        op = change.get("op")
        if op in ("delete", "put"):
            transfer_cancel(workspace=workspace, path=path)  # a newer state than a fetch's
        if op == "delete":
            WorkspaceFile.objects.filter(workspace=workspace, path=path).delete()
        elif op == "fetch":
            problem = transfer_start_reported(row=row, path=path, change=change)
            if problem:
                problems.append({"path": path, "error": problem})
        elif op == "put":
            try:
                data = zlib.decompress(base64.b64decode(str(change.get("data", ""))))
            except (ValueError, zlib.error):
                problems.append({"path": path, "error": "undecodable"})
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != change.get("sha256"):
                problems.append({"path": path, "error": "checksum_mismatch"})
                continue
            mirror_store(session_id=workspace.session_id, body=io.BytesIO(data), sha256=digest)
            try:
                with transaction.atomic():
                    manifest_put(
                        workspace=workspace,
                        path=path,
                        size=len(data),
                        sha256=digest,
                        mode=int(change.get("mode") or 0o644),
                    )
            except CortexError as exc:
                problems.append({"path": path, "error": exc.code})
        elif op == "skip":
            problems.append({"path": path, "error": str(change.get("reason", "skipped"))[:64]})
    row.known = _mirror_versions(workspace)
    row.drift = problems


def _dispatch_write(row: WorkspaceNode, entry: WorkspaceFile) -> None:
    workspace = row.workspace
    name = blob_name(session_id=workspace.session_id, sha256=entry.sha256)
    with mirror_storage().open(name, "rb") as handle:
        file_push(
            actor=workspace.session.owner,
            node=row.node,
            path=f"{workspace_node_folder(workspace=workspace, node_pk=row.node_id)}/{entry.path}",
            source=handle,
            size=entry.size,
            timeout=SYNC_TIMEOUT,
            chat_session_id=workspace.session_id,
            tags={"workspace": workspace.pk, "rel": entry.path, "mode": entry.mode},
        )


def _bundles(entries: list[WorkspaceFile]) -> list[list[WorkspaceFile]]:
    """Group small files into bundles of at most BUNDLE_BYTES / BUNDLE_FILES (in path order)."""
    groups: list[list[WorkspaceFile]] = []
    current: list[WorkspaceFile] = []
    weight = 0
    for entry in sorted(entries, key=lambda e: e.path):
        if current and (len(current) >= BUNDLE_FILES or weight + entry.size > BUNDLE_BYTES):
            groups.append(current)
            current, weight = [], 0
        current.append(entry)
        weight += entry.size
    if current:
        groups.append(current)
    return groups


def _dispatch_bundle(row: WorkspaceNode, entries: list[WorkspaceFile]) -> None:
    """One push for many small files: an uncompressed tar of their mirror blobs (one staged
    copy, one task, one audit row that counts them)."""
    workspace = row.workspace
    storage = mirror_storage()
    with tempfile.SpooledTemporaryFile(max_size=_BUNDLE_SPOOL) as spool:
        with tarfile.open(fileobj=spool, mode="w:", format=tarfile.PAX_FORMAT) as tar:
            for entry in entries:
                info = tarfile.TarInfo(entry.path)
                info.size, info.mode = entry.size, entry.mode & 0o777
                name = blob_name(session_id=workspace.session_id, sha256=entry.sha256)
                with storage.open(name, "rb") as handle:
                    tar.addfile(info, handle)
        size = spool.tell()
        spool.seek(0)
        file_push(
            actor=workspace.session.owner,
            node=row.node,
            path=workspace_node_folder(workspace=workspace, node_pk=row.node_id),
            source=spool,
            size=size,
            timeout=SYNC_TIMEOUT,
            chat_session_id=workspace.session_id,
            tags={
                "workspace": workspace.pk,
                "files": [[e.path, e.sha256, e.mode] for e in entries],
            },
            action="write_many",
        )


def _weight(payload: Any) -> int:
    """How many files an open sync task carries (a bundle many, anything else one)."""
    if isinstance(payload, dict) and payload.get("action") == "write_many":
        return len(payload.get("files") or [])
    return 1


def _in_flight(payloads: list[Any]) -> set[tuple[Any, Any]]:
    """(path, version) of every write under way, (path, "-") of every delete."""
    moving: set[tuple[Any, Any]] = set()
    for p in payloads:
        if p.get("action") == "write_many":
            moving.update(
                (f[0], _version(f[1], f[2] if len(f) == 3 else 0o644))
                for f in p.get("files") or []
                if len(f) in (2, 3)
            )
        elif p.get("action") == "write":
            moving.add((p.get("rel"), _version(p.get("sha256", ""), p.get("mode", 0o644))))
        else:
            moving.add((p.get("rel"), "-"))
    return moving


def _dispatch_delete(row: WorkspaceNode, path: str) -> None:
    workspace = row.workspace
    task_dispatch(
        actor=workspace.session.owner,
        node=row.node,
        kind=TaskKind.FILES,
        payload={
            "action": "delete",
            "path": f"{workspace_node_folder(workspace=workspace, node_pk=row.node_id)}/{path}",
            "workspace": workspace.pk,
            "rel": path,
        },
        timeout=SYNC_TIMEOUT,
        chat_session_id=workspace.session_id,
    )


def _reconcile(row: WorkspaceNode) -> None:
    """Bring one node toward the mirror (under the row's lock); never repeats an open task."""
    workspace, node = row.workspace, row.node
    if not _online(node):
        _forget(row)
        row.state, row.pending = SyncState.OFFLINE, 0
        row.save(update_fields=["state", "known", "last_known", "pending", "updated_at"])
        return
    if row.state == SyncState.DRIFT:
        return  # a person or the AI resolves drift on purpose (resync)
    open_tasks = list(_open_tasks(row).values_list("payload", flat=True))
    lead = workspace.source == WorkspaceSource.NODE and workspace.lead_node_id == row.node_id
    if lead:
        # The lead is the source: it reports its changes (watch); hub-side writes reach it as
        # pushes once the hub knows what it holds (after its first watch answer).
        if not any(p.get("action") == "watch" for p in open_tasks):
            _dispatch_watch(row)
            open_tasks.append({"action": "watch"})
        if row.known is None:
            row.state, row.pending = SyncState.SYNCING, len(open_tasks)
            row.save(update_fields=["state", "pending", "updated_at"])
            return
    if row.known is None:
        if not any(p.get("action") == "manifest" for p in open_tasks):
            _dispatch_manifest(row)
        row.state, row.pending = SyncState.SYNCING, max(len(open_tasks), 1)
        row.save(update_fields=["state", "pending", "updated_at"])
        return
    known: dict[str, str] = row.known
    in_flight = _in_flight(open_tasks)
    started = 0
    mirror = {entry.path: entry for entry in WorkspaceFile.objects.filter(workspace=workspace)}
    changed = [
        entry
        for path, entry in mirror.items()
        if known.get(path) != (version := _version(entry.sha256, entry.mode))
        and (path, version) not in in_flight
    ]
    small = [e for e in changed if e.size <= BUNDLE_FILE_BYTES]
    if len(small) < 2:
        small = []  # one file alone goes as a plain write
    for group in _bundles(small):
        _dispatch_bundle(row, group)
        started += len(group)
    bundled = {e.path for e in small}
    for entry in changed:
        if entry.path not in bundled:
            _dispatch_write(row, entry)
            started += 1
    extra = [p for p in known if p not in mirror and (p, "-") not in in_flight]
    rules = workspace_ignore_rules(workspace=workspace) if extra else None
    for path in extra:
        if rules is not None and rules.ignored(path):
            continue  # the node's own (build output, caches): never deleted there
        _dispatch_delete(row, path)
        started += 1
    watching = 1 if lead else 0  # the lead's open watch is not a pending transfer
    row.pending = sum(_weight(p) for p in open_tasks) + started - watching
    row.pending += workspace_transfers_pending(
        workspace=workspace, node_id=row.node_id
    )  # files coming in
    row.state = SyncState.SYNCING if row.pending else SyncState.IN_SYNC
    row.save(update_fields=["state", "pending", "updated_at"])


def _rows_for(workspace: Workspace) -> list[WorkspaceNode]:
    """Rows for every attached node (created as needed); rows of detached nodes go."""
    attached = set(
        SessionNode.objects.filter(session_id=workspace.session_id).values_list(
            "node_id", flat=True
        )
    )
    WorkspaceNode.objects.filter(workspace=workspace).exclude(node_id__in=attached).delete()
    have = set(WorkspaceNode.objects.filter(workspace=workspace).values_list("node_id", flat=True))
    for node_id in attached - have:
        WorkspaceNode.objects.get_or_create(workspace=workspace, node_id=node_id)
    return list(
        WorkspaceNode.objects.filter(workspace=workspace).select_related(
            "node", "workspace__session__owner"
        )
    )


def _workspace_reconcile(*, workspace_id: int) -> None:
    """Reconcile every attached node of one workspace now (each under its own row lock)."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return
    if workspace.source == WorkspaceSource.NONE:
        WorkspaceNode.objects.filter(workspace=workspace).delete()
        return
    for row in _rows_for(workspace):
        _reconcile_row(row_id=row.pk)


def _reconcile_row(*, row_id: int) -> None:
    try:
        with transaction.atomic():
            row = (
                WorkspaceNode.objects.select_for_update()
                .select_related("node", "workspace__session__owner")
                .filter(pk=row_id)
                .first()
            )
            if row is not None:
                _reconcile(row)
    except Exception:  # a refused dispatch (grant revoked): drift, shown to the person
        logger.exception("workspace sync of row %s failed", row_id)
        WorkspaceNode.objects.filter(pk=row_id).update(state=SyncState.DRIFT)


def workspace_sync_soon(*, workspace_id: int) -> None:
    """After the caller's transaction commits, bring the workspace's nodes up to date."""
    transaction.on_commit(lambda: _workspace_reconcile(workspace_id=workspace_id))


def _check_drift(row: WorkspaceNode, *, sizes: dict[str, int]) -> None:
    """After a manifest: files the node changed itself (not stale copies of what the hub put
    there) are drift, kept for a person or the AI to resolve; their bytes are fetched."""
    node_files = row.known or {}
    mirror = _mirror_versions(row.workspace)
    last = row.last_known or {}
    rules = workspace_ignore_rules(workspace=row.workspace)
    drift: list[dict[str, Any]] = []
    for path, sha in sorted(node_files.items()):
        if path not in mirror and rules.ignored(path):
            continue  # an ignored file the workspace does not hold is the node's own business
        if mirror.get(path) != sha and last.get(path) != sha:
            change = "modified" if path in mirror else "added"
            digest, _, flag = sha.partition("+")
            drift.append(
                {
                    "path": path,
                    "change": change,
                    "sha256": digest,
                    "size": sizes.get(path, 0),
                    "mode": 0o755 if flag else 0o644,
                }
            )
    for path, sha in sorted(last.items()):
        if path not in node_files and mirror.get(path) == sha:
            drift.append({"path": path, "change": "deleted"})
    if not drift:
        return
    row.state, row.drift = SyncState.DRIFT, drift
    folder = workspace_node_folder(workspace=row.workspace, node_pk=row.node_id)
    for entry in drift:
        if entry["change"] != "deleted" and entry["size"] <= DRIFT_FETCH_BYTES:
            task_dispatch(
                actor=row.workspace.session.owner,
                node=row.node,
                kind=TaskKind.FILES,
                payload={
                    "action": "read",
                    "encoding": "base64",
                    "path": f"{folder}/{entry['path']}",
                    "workspace": row.workspace_id,
                    "rel": entry["path"],
                    "drift": True,
                },
                timeout=60,
                chat_session_id=row.workspace.session_id,
            )


def _drift_fetched(row: WorkspaceNode, payload: dict[str, Any], result: Any) -> None:
    """A drifted file's bytes arrived: keep them (by hash) and show a text diff."""
    rel = payload.get("rel")
    entry = next((e for e in row.drift or [] if e.get("path") == rel), None)
    if entry is None or not isinstance(result, dict):
        return
    try:
        data = base64.b64decode(str(result.get("content", "")), validate=True)
    except ValueError:
        return
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.get("sha256"):
        return  # changed again since the manifest: a resync shows the newer state
    mirror_store(session_id=row.workspace.session_id, body=io.BytesIO(data), sha256=digest)
    entry["fetched"] = True
    source = WorkspaceFile.objects.filter(workspace=row.workspace, path=rel).first()
    old = b""
    if source is not None and source.size <= DIFF_BYTES:
        with mirror_storage().open(
            blob_name(session_id=row.workspace.session_id, sha256=source.sha256)
        ) as fh:
            old = fh.read()
    if len(data) <= DIFF_BYTES:
        try:
            before, after = old.decode("utf-8"), data.decode("utf-8")
        except UnicodeDecodeError:
            return
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"source/{rel}",
            tofile=f"node/{rel}",
        )
        entry["diff"] = "".join(list(lines)[:400])


def workspace_drift_resolve(
    *, actor: Any, workspace: Workspace, node_id: str, action: str, paths: list[str] | None = None
) -> WorkspaceNode:
    """Resolve a node's drift: `keep` the source's version (the node is overwritten) or
    `promote` the node's (it becomes the source's, then every node follows). Audited."""
    from accounts.services.audit import audit_record

    if action not in ("keep", "promote"):
        raise ValidationFailed(fields={"action": ["keep or promote."]})
    with transaction.atomic():
        row = (
            WorkspaceNode.objects.select_for_update()
            .select_related("node", "workspace__session__owner")
            .filter(workspace=workspace, node__node_id=node_id)
            .first()
        )
        if row is None:
            raise NotFound("That node does not share this workspace.")
        if row.state != SyncState.DRIFT:
            raise WorkspaceNoDrift()
        chosen = [e for e in row.drift or [] if paths is None or e.get("path") in paths]
        if action == "promote":
            for entry in chosen:
                path = entry.get("path", "")
                if not entry.get("change"):
                    continue  # a failed transfer, not a version of the node's: nothing to take
                if entry.get("change") == "deleted":
                    WorkspaceFile.objects.filter(workspace=workspace, path=path).delete()
                    continue
                name = blob_name(session_id=workspace.session_id, sha256=str(entry.get("sha256")))
                if not entry.get("fetched") or not mirror_storage().exists(name):
                    raise WorkspaceDriftNotFetched(f"The node's {path} has not arrived yet.")
                manifest_put(
                    workspace=workspace,
                    path=path,
                    size=int(entry.get("size", 0)),
                    sha256=str(entry["sha256"]),
                    mode=int(entry.get("mode", 0o644)),
                )
        row.state, row.drift = SyncState.SYNCING, []
        row.save(update_fields=["state", "drift", "updated_at"])
        audit_record(
            actor=actor,
            action=f"workspace.drift_{action}",
            target_type="session",
            target_id=workspace.session_id,
            details={"node_id": node_id, "paths": [e.get("path") for e in chosen][:100]},
        )
        workspace_sync_soon(workspace_id=workspace.pk)
    return row


def workspace_resync(*, actor: Any, workspace_id: int) -> None:
    """Forget what the hub believes and ask every node again (clears drift; the skills under
    `.skills/` are refreshed first). Audited (`workspace.resync`)."""
    from accounts.services.audit import audit_record
    from workspaces.services.skills import workspace_skills_publish

    workspace = Workspace.objects.select_related("session").get(pk=workspace_id)
    workspace_skills_publish(actor=actor, workspace=workspace)
    audit_record(
        actor=actor,
        action="workspace.resync",
        target_type="session",
        target_id=workspace.session_id,
    )
    for row in WorkspaceNode.objects.filter(workspace_id=workspace_id):
        _forget(row)
        row.state = SyncState.SYNCING
        row.save(update_fields=["known", "last_known", "state", "updated_at"])
    workspace_sync_soon(workspace_id=workspace_id)


def on_task_end(*, task_id: str, kind: str, payload: Any, status: str) -> None:
    """A sync task ended: record what the node now holds, then reconcile that node again."""
    if kind != TaskKind.FILES or not isinstance(payload, dict) or "workspace" not in payload:
        return
    workspace_id = payload.get("workspace")
    task = Task.objects.filter(pk=task_id).select_related("node").first()
    if task is None or not isinstance(workspace_id, int):
        return
    with transaction.atomic():
        row = (
            WorkspaceNode.objects.select_for_update()
            .select_related("node", "workspace__session__owner")
            .filter(workspace_id=workspace_id, node_id=task.node_id)
            .first()
        )
        # Only the session's own sync tasks count (the owner's, for this session).
        if row is None or task.chat_session_id != row.workspace.session_id:
            return
        if task.requested_by_id != row.workspace.session.owner_id:
            return
        action = payload.get("action")
        if action == "watch":
            current = payload.get("path") == (row.workspace.path or ".")
            if status == TaskStatus.SUCCEEDED and _is_lead(row) and current:
                _apply_watch(row, task.result)
                row.save(update_fields=["known", "drift", "updated_at"])
                workspace_sync_soon(workspace_id=row.workspace_id)
            elif status == TaskStatus.FAILED:
                row.state, row.drift = SyncState.DRIFT, [{"path": "", "error": task.error_code}]
                row.save(update_fields=["state", "drift", "updated_at"])
            else:
                _reconcile(row)
            return
        if status == TaskStatus.SUCCEEDED:
            if action == "manifest":
                result = task.result if isinstance(task.result, dict) else {}
                entries = [
                    e for e in result.get("entries", []) if isinstance(e, list) and len(e) == 5
                ]
                row.known = {str(e[0]): _version(str(e[4]), e[2]) for e in entries}
                if not _is_lead(row):
                    _check_drift(row, sizes={str(e[0]): int(e[1]) for e in entries})
            elif action == "read" and payload.get("drift"):
                _drift_fetched(row, payload, task.result)
                row.save(update_fields=["drift", "updated_at"])
                return
            elif row.known is not None and action == "write":
                result = task.result if isinstance(task.result, dict) else {}
                mode = result.get("mode", payload.get("mode"))  # an older agent tells none
                row.known[str(payload.get("rel"))] = _version(str(payload.get("sha256")), mode)
            elif row.known is not None and action == "write_many":
                _bundle_written(row, payload, task.result)
            elif row.known is not None and action == "delete":
                row.known.pop(str(payload.get("rel")), None)
        elif action == "delete" and task.error_code == "not_found" and row.known is not None:
            row.known.pop(str(payload.get("rel")), None)
        elif action == "read":
            return  # a drift fetch that failed: the entry stays unfetched (promote refuses)
        elif (
            status in _RETRY_STATUSES
            or not _online(row.node)
            or task.error_code == "push_incomplete"  # the stream closed mid-push: ask again
        ):
            _forget(row)
        else:
            _forget(row)
            row.state = SyncState.DRIFT
            row.drift = [{"path": payload.get("rel", ""), "error": task.error_code or "failed"}]
        row.save(update_fields=["known", "last_known", "state", "drift", "updated_at"])
        if (
            status == TaskStatus.SUCCEEDED
            and action in ("write", "write_many", "delete")
            and row.state == SyncState.SYNCING
        ):
            # Mid-batch: the batch's last task end reconciles once, so a batch of N files costs
            # O(N) rather than O(N^2) (each reconcile reads the whole mirror).
            still_open = list(
                _open_tasks(row)
                .exclude(pk=task_id)
                .exclude(payload__action="watch")
                .values_list("payload", flat=True)
            )
            if still_open:
                row.pending = sum(_weight(p) for p in still_open)
                row.save(update_fields=["pending", "updated_at"])
                return
        _reconcile(row)


def _bundle_written(row: WorkspaceNode, payload: dict[str, Any], result: Any) -> None:
    """Record a bundle's files in `known` at once: each one the node reports with the sha256
    and executable bit the hub sent (anything else is asked again at the next manifest)."""
    sent = {
        str(f[0]): _version(str(f[1]), f[2] if len(f) == 3 else 0o644)
        for f in payload.get("files") or []
        if isinstance(f, list) and len(f) in (2, 3)
    }
    modes = {str(f[0]): f[2] for f in payload.get("files") or [] if len(f) == 3}
    files = result.get("files") if isinstance(result, dict) else None
    reported = {
        # an older agent tells no mode: what was sent is believed
        str(f.get("path")): _version(
            str(f.get("sha256")), f.get("mode", modes.get(str(f.get("path")), 0o644))
        )
        for f in (files if isinstance(files, list) else [])
        if isinstance(f, dict)
    }
    known: dict[str, str] = row.known if row.known is not None else {}
    for path, sha in sent.items():
        if reported.get(path) == sha:
            known[path] = sha
    row.known = known  # the same dict, also when it was empty ({} is falsy)
    if len(reported) != len(sent) or any(reported.get(p) != s for p, s in sent.items()):
        _forget(row)  # the node holds something else than reported: ask it (manifest)


def workspace_sweep() -> dict[str, Any]:
    """One sweep round: offline and returning nodes, new attachments, interrupted syncs, and
    the mirrors of deleted sessions."""
    touched = 0
    for workspace in Workspace.objects.exclude(source=WorkspaceSource.NONE).only("pk"):
        rows = _rows_for(workspace)
        for row in rows:
            online = _online(row.node)
            stale = (
                (row.state == SyncState.OFFLINE) == online  # went away, or came back
                or (row.state == SyncState.SYNCING and not _open_tasks(row).exists())
                or (
                    online
                    and _is_lead(row)
                    and not _open_tasks(row).filter(payload__action="watch").exists()
                )
            )
            if stale and row.state != SyncState.DRIFT:
                _reconcile_row(row_id=row.pk)
                touched += 1
    return {"reconciled": touched, "mirrors_removed": mirrors_sweep()}


def mirrors_sweep(*, grace_s: float = BLOB_GRACE_S) -> int:
    """Delete the blobs of sessions that no longer exist, and blobs no manifest row names
    (older than `grace_s`); returns how many went."""
    storage = mirror_storage()
    try:
        folders, _ = storage.listdir("")
    except FileNotFoundError:
        return 0
    removed = 0
    # A blob is stored just before its manifest row commits: young ones are left alone.
    cutoff = timezone.now() - timedelta(seconds=grace_s)
    live = set(Workspace.objects.values_list("session_id", flat=True))
    for folder in folders:
        if not folder.startswith("s") or not folder[1:].isdigit():
            continue
        session_id = int(folder[1:])
        keep: set[str] = set()
        if session_id in live:
            keep = set(
                WorkspaceFile.objects.filter(workspace__session_id=session_id).values_list(
                    "sha256", flat=True
                )
            )
        prefix = session_prefix(session_id=session_id)
        shards, _ = storage.listdir(prefix)
        for shard in shards:
            _, blobs = storage.listdir(f"{prefix}/{shard}")
            for blob in blobs:
                name = f"{prefix}/{shard}/{blob}"
                if blob not in keep and storage.get_modified_time(name) < cutoff:
                    storage.delete(name)
                    removed += 1
    return removed
