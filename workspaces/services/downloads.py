"""Browser downloads join the chat's workspace: the hub copies each one into the mirror.

A browser task dispatched with a `downloads` target (`workspace_downloads_target`) reports what
the node saved in the session's folder: `workspace_path`, `bytes`, `sha256`. On the lead of a
`node` workspace the lead's watch brings the file in like any other change there. From any
other node the hub asks for the bytes with a `files` read tagged `download_of` (a download
larger than one read: ranged reads, `workspaces.services.transfers`); its end stores them in
the mirror (hash checked, caps applied, audited as `workspace.write`) and records that the node
holds them already, and the other nodes follow through the normal sync.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import re
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.services.audit import audit_record
from cortex.errors import CortexError
from mesh.agent.browser_actions import DOWNLOADS_DIR
from mesh.models import Task, TaskKind, TaskStatus
from mesh.services.tasks import DOWNLOADS_KEY, task_dispatch
from workspaces.models import (
    SyncState,
    TransferPurpose,
    Workspace,
    WorkspaceFile,
    WorkspaceNode,
    WorkspaceSource,
)
from workspaces.selectors import DOWNLOAD_FETCH_BYTES, workspace_node_folder, workspace_path
from workspaces.services.files import manifest_put, mirror_store
from workspaces.services.transfers import transfer_start

logger = logging.getLogger("cortex.workspaces")

#: The payload key of a read that fetches a download (its value: the workspace's pk).
DOWNLOAD_OF = "download_of"
#: Downloads of one action copied in at most (the rest stay on the node).
MAX_DOWNLOADS = 20
FETCH_TIMEOUT = 120.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


def on_task_end(*, task_id: str, kind: str, payload: Any, status: str) -> None:
    """A browser task saved downloads in a workspace folder: fetch them. A fetch ended: store."""
    if not isinstance(payload, dict) or status != TaskStatus.SUCCEEDED:
        return
    if kind == TaskKind.BROWSER and isinstance(payload.get(DOWNLOADS_KEY), dict):
        _fetch(task_id=task_id, target=payload[DOWNLOADS_KEY])
    elif kind == TaskKind.FILES and DOWNLOAD_OF in payload:
        _store(task_id=task_id, payload=payload)


def _session_workspace(task: Task) -> Workspace | None:
    """The workspace of the task's chat session, when the task is the session owner's own."""
    if task.chat_session_id is None:
        return None
    workspace = (
        Workspace.objects.filter(session_id=task.chat_session_id)
        .select_related("session__owner")
        .first()
    )
    if workspace is None or workspace.source == WorkspaceSource.NONE:
        return None
    if task.requested_by_id != workspace.session.owner_id:
        return None
    return workspace


def _downloads(result: Any) -> list[tuple[str, str, int]]:
    """(workspace path, sha256, bytes) of each download the node says it kept in the workspace;
    anything malformed, or outside `downloads/`, is ignored (never fetched)."""
    found: list[tuple[str, str, int]] = []
    entries = result.get("downloads") if isinstance(result, dict) else None
    for entry in (entries if isinstance(entries, list) else [])[:MAX_DOWNLOADS]:
        if not isinstance(entry, dict) or "workspace_path" not in entry:
            continue
        sha, size = entry.get("sha256"), entry.get("bytes")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            continue
        try:
            path = workspace_path(path=entry["workspace_path"])
        except CortexError:
            continue
        if path.startswith(f"{DOWNLOADS_DIR}/") and path.count("/") == 1:
            found.append((path, sha, size))
    return found


def _fetch(*, task_id: str, target: dict[str, Any]) -> None:
    task = Task.objects.filter(pk=task_id).select_related("node").first()
    workspace = _session_workspace(task) if task is not None else None
    if task is None or workspace is None:
        return
    if workspace.source == WorkspaceSource.NODE and workspace.lead_node_id == task.node_id:
        return  # the lead's watch reports the new file itself
    folder = workspace_node_folder(workspace=workspace, node_pk=task.node_id)
    if target.get("folder") != folder:
        return  # the workspace changed since: the file is not where the session's folder is
    cap = min(int(settings.WORKSPACE_MAX_FILE_BYTES), int(target.get("max_bytes") or 0))
    for path, sha, size in _downloads(task.result):
        if size > cap:
            continue
        node_path = path if folder == "." else f"{folder}/{path}"
        if size > DOWNLOAD_FETCH_BYTES:  # more than one read brings: ranged reads
            try:
                transfer_start(
                    workspace=workspace,
                    node=task.node,
                    path=path,
                    node_path=node_path,
                    purpose=TransferPurpose.DOWNLOAD,
                    sha256=sha,
                    size=size,
                )
            except CortexError as exc:  # over a cap, or the owner lost the node: stays there
                logger.info(
                    "download %s of session %s not fetched: %s", path, task.chat_session_id, exc
                )
            continue
        try:
            task_dispatch(
                actor=workspace.session.owner,
                node=task.node,
                kind=TaskKind.FILES,
                payload={
                    "action": "read",
                    "encoding": "base64",
                    "path": node_path,
                    DOWNLOAD_OF: workspace.pk,
                    "rel": path,
                    "sha256": sha,
                },
                timeout=FETCH_TIMEOUT,
                chat_session_id=workspace.session_id,
            )
        except CortexError as exc:  # the owner lost the node: the file stays on it
            logger.info(
                "download %s of session %s not fetched: %s", path, task.chat_session_id, exc
            )


def _store(*, task_id: str, payload: dict[str, Any]) -> None:
    task = Task.objects.filter(pk=task_id).select_related("node").first()
    workspace = _session_workspace(task) if task is not None else None
    if task is None or workspace is None or workspace.pk != payload.get(DOWNLOAD_OF):
        return
    result = task.result if isinstance(task.result, dict) else {}
    try:
        path = workspace_path(path=payload.get("rel"))
        data = base64.b64decode(str(result.get("content", "")), validate=True)
    except (CortexError, binascii.Error, ValueError):
        return
    sha = hashlib.sha256(data).hexdigest()
    if sha != payload.get("sha256") or len(data) > int(settings.WORKSPACE_MAX_FILE_BYTES):
        logger.info("download %s of session %s changed on the node", path, workspace.session_id)
        return
    mirror_store(session_id=workspace.session_id, body=io.BytesIO(data), sha256=sha)
    try:
        with transaction.atomic():
            Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
            current = WorkspaceFile.objects.filter(workspace=workspace, path=path).first()
            if current is not None and current.sha256 != sha:
                return  # the workspace has another file there now: it wins
            manifest_put(workspace=workspace, path=path, size=len(data), sha256=sha)
            audit_record(
                actor=workspace.session.owner,
                action="workspace.write",
                target_type="session",
                target_id=workspace.session_id,
                details={
                    "path": path,
                    "size": len(data),
                    "sha256": sha,
                    "source": "browser_download",
                    "node_id": task.node.node_id,
                },
            )
            row = (
                WorkspaceNode.objects.select_for_update()
                .filter(workspace=workspace, node_id=task.node_id)
                .first()
            )
            if row is not None:
                _holds(row, path=path, sha=sha)
            from workspaces.services.sync import workspace_sync_soon

            workspace_sync_soon(workspace_id=workspace.pk)
    except CortexError as exc:  # over the workspace cap, or a file/folder clash: stays on node
        logger.info("download %s of session %s not stored: %s", path, workspace.session_id, exc)


def _holds(row: WorkspaceNode, *, path: str, sha: str) -> None:
    """The node holds these bytes already: the sync does not send them back, and a manifest
    that saw the download before the mirror had it is no drift any more."""
    if row.known is not None:
        row.known[path] = sha
    drift = row.drift or []
    rest = [e for e in drift if not (e.get("path") == path and e.get("sha256") == sha)]
    if row.state == SyncState.DRIFT and len(rest) != len(drift):
        row.drift = rest
        if not rest:
            row.state = SyncState.SYNCING
    row.save(update_fields=["known", "drift", "state", "updated_at"])
