"""Writes to the hub mirror: one file in (hashed, capped, stored by content), one path out."""

from __future__ import annotations

import hashlib
import tempfile
from datetime import datetime
from typing import IO

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services.audit import audit_record
from sessions_app.models import ChatSession
from workspaces.errors import (
    WorkspaceDisabled,
    WorkspaceFileMissing,
    WorkspaceFileTooLarge,
    WorkspacePathConflict,
    WorkspaceTooLarge,
)
from workspaces.models import Workspace, WorkspaceFile, WorkspaceSource
from workspaces.selectors import workspace_of, workspace_path, workspace_total_bytes
from workspaces.storage import blob_name, mirror_storage

READ_CHUNK = 256 * 1024


def workspace_file_check_length(*, content_length: int) -> None:
    """Refuse a declared body larger than the per-file cap before reading it (413)."""
    cap = int(settings.WORKSPACE_MAX_FILE_BYTES)
    if content_length > cap:
        raise WorkspaceFileTooLarge(f"The file is larger than the per-file limit of {cap} bytes.")


def workspace_active(*, session: ChatSession) -> Workspace:
    """The session's workspace; WorkspaceDisabled (409) while its source is `none`."""
    workspace = workspace_of(session=session)
    if workspace.pk is None or workspace.source == WorkspaceSource.NONE:
        raise WorkspaceDisabled()
    return workspace


def _spool(source: IO[bytes], cap: int) -> tuple[IO[bytes], int, str]:
    """Copy the body to a temporary file, hashing and counting; refuse past `cap`."""
    spool = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115  # returned
    digest, size = hashlib.sha256(), 0
    try:
        while data := source.read(READ_CHUNK):
            size += len(data)
            if size > cap:
                raise WorkspaceFileTooLarge(
                    f"The file is larger than the per-file limit of {cap} bytes."
                )
            digest.update(data)
            spool.write(data)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, size, digest.hexdigest()


def mirror_store(*, session_id: int, body: IO[bytes], sha256: str) -> None:
    """Store a blob by its hash once (a second writer of the same bytes stores nothing)."""
    storage = mirror_storage()
    name = blob_name(session_id=session_id, sha256=sha256)
    if not storage.exists(name):
        saved = storage.save(name, File(body, name=name))
        if saved != name:  # another process stored the same bytes meanwhile
            storage.delete(saved)


def _check_shape(workspace: Workspace, path: str) -> None:
    """A file may not sit where a folder is, nor under a file."""
    parents = []
    parts = path.split("/")
    for i in range(1, len(parts)):
        parents.append("/".join(parts[:i]))
    clash = WorkspaceFile.objects.filter(workspace=workspace).filter(
        Q(path__in=parents) | Q(path__startswith=f"{path}/")
    )
    if clash.exists():
        raise WorkspacePathConflict(f"{path} would be both a file and a folder.")


def manifest_put(
    *,
    workspace: Workspace,
    path: str,
    size: int,
    sha256: str,
    mode: int | None = None,
    mtime: datetime | None = None,
) -> WorkspaceFile:
    """Upsert one manifest row (inside the caller's transaction), after the caps. Without a
    `mode` a file keeps its own (new ones: 0o644): rewriting a script leaves it executable."""
    _check_shape(workspace, path)
    current = WorkspaceFile.objects.filter(workspace=workspace, path=path).first()
    total = workspace_total_bytes(workspace=workspace) - (current.size if current else 0) + size
    cap = int(settings.WORKSPACE_MAX_BYTES)
    if total > cap:
        raise WorkspaceTooLarge(f"The workspace would hold {total} bytes; its limit is {cap}.")
    row = current or WorkspaceFile(workspace=workspace, path=path)
    if mode is None:
        mode = current.mode if current else 0o644
    row.size, row.sha256, row.mode = size, sha256, mode & 0o777
    row.mtime = mtime or timezone.now()
    row.full_clean(exclude=["workspace"], validate_unique=False, validate_constraints=False)
    row.save()
    return row


def workspace_file_write(
    *,
    actor: User,
    session: ChatSession,
    path: object,
    body: IO[bytes],
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> WorkspaceFile:
    """Write one file of the session's workspace (the hub mirror, then every attached node).

    Raises WorkspaceDisabled (source none), the path errors (400), WorkspaceFileTooLarge /
    WorkspaceTooLarge (413), WorkspacePathConflict (409). On any error nothing changed but,
    at worst, an unreferenced blob that the sweep removes. Audited (`workspace.write`).
    """
    workspace = workspace_active(session=session)
    clean = workspace_path(path=path)
    spool, size, sha256 = _spool(body, int(settings.WORKSPACE_MAX_FILE_BYTES))
    with spool:
        # Refused before storing (the exact check runs again under the row lock).
        current = WorkspaceFile.objects.filter(workspace=workspace, path=clean).first()
        cap = int(settings.WORKSPACE_MAX_BYTES)
        if (
            workspace_total_bytes(workspace=workspace) - (current.size if current else 0) + size
            > cap
        ):
            raise WorkspaceTooLarge(f"The workspace would exceed its limit of {cap} bytes.")
        mirror_store(session_id=session.pk, body=spool, sha256=sha256)
    with transaction.atomic():
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
        row = manifest_put(workspace=workspace, path=clean, size=size, sha256=sha256)
        audit_record(
            actor=actor,
            action="workspace.write",
            target_type="session",
            target_id=session.pk,
            audit_context=audit_context,
            details={"path": clean, "size": size, "sha256": sha256},
        )
        from workspaces.services.sync import workspace_sync_soon

        workspace_sync_soon(workspace_id=workspace.pk)
    return row


def workspace_file_delete(
    *,
    actor: User,
    session: ChatSession,
    path: object,
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> int:
    """Delete a file, or a folder with everything under it; returns how many files went.
    Audited (`workspace.delete`); the nodes follow once committed."""
    workspace = workspace_active(session=session)
    clean = workspace_path(path=path)
    with transaction.atomic():
        Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
        rows = WorkspaceFile.objects.filter(workspace=workspace).filter(
            Q(path=clean) | Q(path__startswith=f"{clean}/")
        )
        count, _ = rows.delete()
        if not count:
            raise WorkspaceFileMissing()
        audit_record(
            actor=actor,
            action="workspace.delete",
            target_type="session",
            target_id=session.pk,
            audit_context=audit_context,
            details={"path": clean, "files": count},
        )
        from workspaces.services.sync import workspace_sync_soon

        workspace_sync_soon(workspace_id=workspace.pk)
    return count
