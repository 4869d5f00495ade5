"""Reads of workspaces: the session's settings, the mirror's listing and bytes, sync state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from django.db.models import QuerySet

from mesh.agent.ignore import IGNORE_FILES, MAX_IGNORE_FILE_BYTES, IgnoreRules
from mesh.agent.workspace import WorkspaceError, clean_relative_path
from sessions_app.models import ChatSession
from workspaces.errors import WorkspaceFileMissing, WorkspacePathInvalid, WorkspacePathOutside
from workspaces.models import (
    TransferPurpose,
    TransferState,
    Workspace,
    WorkspaceFile,
    WorkspaceNode,
    WorkspaceSource,
    WorkspaceTransfer,
)
from workspaces.storage import blob_name, mirror_storage


def workspace_path(*, path: Any, allow_root: bool = False) -> str:
    """`path` under the one workspace path rule, or the matching 400 error."""
    try:
        return clean_relative_path(path, allow_root=allow_root)
    except WorkspaceError as exc:
        if exc.code == "invalid_path":
            raise WorkspacePathInvalid(str(exc)) from exc
        raise WorkspacePathOutside(str(exc)) from exc


def workspace_of(*, session: ChatSession) -> Workspace:
    """The session's workspace; an unsaved one with source `none` when it never had one."""
    found = Workspace.objects.filter(session=session).select_related("lead_node").first()
    return found or Workspace(session=session, source=WorkspaceSource.NONE)


def workspace_nodes(*, workspace: Workspace) -> QuerySet[WorkspaceNode]:
    """Sync state rows of the nodes that share this workspace."""
    if workspace.pk is None:
        return WorkspaceNode.objects.none()
    return WorkspaceNode.objects.filter(workspace=workspace).select_related("node")


@dataclass(frozen=True)
class Entry:
    path: str
    kind: str
    size: int
    sha256: str | None
    modified_at: datetime | None


def workspace_file_list(*, workspace: Workspace, path: Any = "") -> list[Entry]:
    """The direct entries of folder `path` of the mirror (files and derived folders)."""
    folder = workspace_path(path=path or "", allow_root=True)
    if workspace.pk is None:
        return []
    prefix = f"{folder}/" if folder else ""
    rows = WorkspaceFile.objects.filter(workspace=workspace)
    if prefix:
        rows = rows.filter(path__startswith=prefix)
    entries: dict[str, Entry] = {}
    for row in rows.only("path", "size", "sha256", "mtime").order_by("path"):
        rest = row.path[len(prefix) :]
        name, _, deeper = rest.partition("/")
        full = prefix + name
        if not deeper:
            entries[full] = Entry(full, "file", row.size, row.sha256, row.mtime)
            continue
        seen = entries.get(full)
        newest = (
            row.mtime if seen is None or not seen.modified_at else max(seen.modified_at, row.mtime)
        )
        total = row.size + (seen.size if seen else 0)
        entries[full] = Entry(full, "directory", total, None, newest)
    if folder and not entries and not rows.exists():
        raise WorkspaceFileMissing("No such folder in the workspace.")
    return sorted(entries.values(), key=lambda e: (e.kind != "directory", e.path))


def workspace_file_get(*, workspace: Workspace, path: Any) -> WorkspaceFile:
    """The manifest row of one file of the mirror (404 if none)."""
    clean = workspace_path(path=path)
    if workspace.pk is None:
        raise WorkspaceFileMissing()
    row = WorkspaceFile.objects.filter(workspace=workspace, path=clean).first()
    if row is None:
        raise WorkspaceFileMissing()
    return row


def workspace_file_open(*, workspace: Workspace, path: Any) -> tuple[WorkspaceFile, IO[bytes]]:
    """The row and an open handle on the bytes of one mirrored file."""
    row = workspace_file_get(workspace=workspace, path=path)
    try:
        handle = mirror_storage().open(
            blob_name(session_id=workspace.session_id, sha256=row.sha256), "rb"
        )
    except FileNotFoundError as exc:
        raise WorkspaceFileMissing() from exc
    return row, handle


def workspace_ignore_rules(*, workspace: Workspace) -> IgnoreRules:
    """The mirror's `.gitignore` / `.cortexignore` files as rules (git's, the same module the
    lead's watcher uses): which files of a node are its own business, not the workspace's."""
    from django.db.models import Q

    texts: dict[str, str] = {}
    if workspace.pk is not None:
        names = Q()
        for name in IGNORE_FILES:
            names |= Q(path=name) | Q(path__endswith=f"/{name}")
        rows = WorkspaceFile.objects.filter(names, workspace=workspace)
        storage = mirror_storage()
        for row in rows.filter(size__lte=MAX_IGNORE_FILE_BYTES).only("path", "sha256"):
            try:
                with storage.open(
                    blob_name(session_id=workspace.session_id, sha256=row.sha256), "rb"
                ) as fh:
                    texts[row.path] = fh.read().decode("utf-8", errors="replace")
            except FileNotFoundError:
                continue
    return IgnoreRules.from_texts(texts)


def workspace_total_bytes(*, workspace: Workspace) -> int:
    from django.db.models import Sum

    if workspace.pk is None:
        return 0
    total = WorkspaceFile.objects.filter(workspace=workspace).aggregate(n=Sum("size"))["n"]
    return int(total or 0)


def workspace_for_user(*, user: Any, session_id: Any) -> Workspace:
    """The workspace of one of the user's sessions (NotFound outside them)."""
    from sessions_app.selectors import session_get_for_user

    return workspace_of(session=session_get_for_user(user=user, session_id=session_id))


def workspace_node_folder(*, workspace: Workspace, node_pk: int | None) -> str:
    """The one rule for where a session's workspace lives on a node (relative to the node's
    workspace root): the lead's own folder (`.` for its root) for a `node` workspace,
    `sessions/<session id>` on every other node."""
    if workspace.source == WorkspaceSource.NODE and node_pk == workspace.lead_node_id:
        return workspace.path or "."
    return f"sessions/{workspace.session_id}"


def workspace_node_folders(*, session_id: int) -> dict[str, str]:
    """Where the session's workspace lives on each attached node (node_id -> folder relative
    to the node's workspace root); empty without a workspace. Shell commands start there."""
    workspace = Workspace.objects.filter(session_id=session_id).first()
    if workspace is None or workspace.source == WorkspaceSource.NONE:
        return {}
    from sessions_app.models import SessionNode

    return {
        node_id: workspace_node_folder(workspace=workspace, node_pk=node_pk)
        for node_pk, node_id in SessionNode.objects.filter(session_id=session_id).values_list(
            "node_id", "node__node_id"
        )
    }


#: The largest browser download the hub copies into a mirror with one `files` read; larger ones
#: come in ranged reads (`workspaces.services.transfers`).
DOWNLOAD_FETCH_BYTES = 1024 * 1024


def workspace_downloads_target(*, session_id: int | None, node: Any) -> dict[str, Any] | None:
    """Where a chat's browser downloads go on `node` (`{"folder", "max_bytes"}`, the browser
    task's `downloads` key), or None when the chat has no workspace.

    `max_bytes` is the most a download may have and still join the workspace: the per-file cap
    and the room left under the workspace cap (a large file reaches the hub in ranged reads). A
    larger download stays on the node, outside the workspace.
    """
    from django.conf import settings

    if session_id is None:
        return None
    workspace = Workspace.objects.filter(session_id=session_id).first()
    if workspace is None or workspace.source == WorkspaceSource.NONE:
        return None
    room = int(settings.WORKSPACE_MAX_BYTES) - workspace_total_bytes(workspace=workspace)
    cap = min(int(settings.WORKSPACE_MAX_FILE_BYTES), max(room, 0))
    folder = workspace_node_folder(workspace=workspace, node_pk=node.pk)
    return {"folder": clean_relative_path(folder, allow_root=True) or ".", "max_bytes": cap}


def workspace_search(
    *, workspace: Workspace, query: str, path: Any = "", limit: int = 100
) -> list[dict[str, Any]]:
    """Files of the mirror whose path or text contains `query` (text files up to 1 MiB)."""
    folder = workspace_path(path=path or "", allow_root=True)
    if workspace.pk is None or not query:
        return []
    rows = WorkspaceFile.objects.filter(workspace=workspace).order_by("path")
    if folder:
        rows = rows.filter(path__startswith=f"{folder}/")
    found: list[dict[str, Any]] = []
    needle = query.lower()
    storage = mirror_storage()
    for row in rows:
        if needle in row.path.lower():
            found.append({"path": row.path, "line": None, "text": ""})
        if row.size <= 1024 * 1024:
            try:
                with storage.open(
                    blob_name(session_id=workspace.session_id, sha256=row.sha256)
                ) as fh:
                    text = fh.read().decode("utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
            for number, line in enumerate(text.splitlines(), start=1):
                if needle in line.lower():
                    found.append({"path": row.path, "line": number, "text": line[:300]})
                    if len(found) >= limit:
                        return found
        if len(found) >= limit:
            break
    return found[:limit]


#: A lead's file whose transfer failed is not asked for again for this long (unless it changes).
TRANSFER_FAILED_QUIET_S = 60


def workspace_transfers_pending(*, workspace: Workspace, node_id: int) -> int:
    """How many files are on their way in from that node (part of its `pending`)."""
    return WorkspaceTransfer.objects.filter(
        workspace=workspace, node_id=node_id, state=TransferState.RUNNING
    ).count()


def workspace_transfers_known(*, workspace: Workspace) -> list[tuple[str, str, int]]:
    """(path, sha256, mode) of the lead's files on their way in, and of those that failed a
    moment ago (so a file that cannot come in is not reported again at once, only when it
    changes or a while later)."""
    from datetime import timedelta

    from django.db.models import Q
    from django.utils import timezone

    if workspace.lead_node_id is None:
        return []
    recent = timezone.now() - timedelta(seconds=TRANSFER_FAILED_QUIET_S)
    rows = WorkspaceTransfer.objects.filter(
        workspace=workspace, purpose=TransferPurpose.WATCH, node_id=workspace.lead_node_id
    ).filter(Q(state=TransferState.RUNNING) | Q(state=TransferState.DRIFT, updated_at__gte=recent))
    return list(rows.values_list("path", "sha256", "mode"))
