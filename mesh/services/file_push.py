"""Push a file to a node: stage it in storage, then dispatch a `files` write that names it.

The file never enters the database: the task's payload carries the blob's storage name, size and
sha256, and the gRPC process streams the blob to the node as FileChunk messages after the
TaskAssign. The blob is deleted when the task ends (`push_blobs.push_blob_release`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from cortex.errors import NotFound, ValidationFailed
from mesh import selectors
from mesh.models import Node, Task, TaskKind
from mesh.services.push_blobs import push_blob_delete, push_blob_name
from mesh.services.tasks import task_dispatch

#: Bytes read from the source per step while staging (small enough to stay in the CPU cache
#: between the hash and the write).
STAGE_CHUNK = 64 * 1024
DEFAULT_PUSH_TIMEOUT = 600.0
#: Room for the multipart framing and the other fields around the file.
MULTIPART_SLACK = 64 * 1024


class FilePushTooLarge(ValidationFailed):
    code = "file_too_large"
    default_message = "The file is larger than the push limit."
    http_status = 413


class _HashingSource(File):  # type: ignore[type-arg]  # File[bytes]; not subscriptable at run time
    """The source as a storage `File` whose chunks are counted and hashed as storage reads them.

    Not the upload itself: storage would move a temporary upload into place without reading it.
    """

    def __init__(self, source: IO[bytes], limit: int) -> None:
        super().__init__(None, name="push")
        self.source = source
        self.limit = limit
        self.size_read = 0
        self.digest = hashlib.sha256()

    def _take(self, data: bytes | str) -> bytes:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.size_read += len(data)
        if self.size_read > self.limit:
            raise FilePushTooLarge(f"The file is larger than the limit of {self.limit} bytes.")
        self.digest.update(data)
        return data

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        if hasattr(self.source, "seek"):
            with contextlib.suppress(OSError, ValueError):  # a pipe: read from where it is
                self.source.seek(0)
        while data := self.source.read(chunk_size or STAGE_CHUNK):
            yield self._take(data)

    def read(self, size: int = -1) -> bytes:
        return self._take(self.source.read(size))

    def close(self) -> None:
        return None  # the caller owns the source

    def __bool__(self) -> bool:
        return True


def file_push_check_length(*, content_length: int) -> None:
    """Refuse a request body that cannot hold an allowed file, before it is read (413)."""
    limit = int(settings.MESH_FILE_PUSH_MAX_BYTES)
    if content_length > limit + MULTIPART_SLACK:
        raise FilePushTooLarge(f"The file is larger than the limit of {limit} bytes.")


def file_push(
    *,
    actor: User,
    node: Node,
    path: str,
    source: IO[bytes] | Any,
    size: int | None = None,
    timeout: float = DEFAULT_PUSH_TIMEOUT,
    audit_context: AuditContext = DEFAULT_CONTEXT,
    chat_session_id: int | None = None,
    tags: dict[str, Any] | None = None,
    action: str = "write",
) -> Task:
    """Stage `source` (a file-like or UploadedFile) and queue its write to `path` on `node`.

    Raises NotFound outside the caller's grants, FilePushTooLarge past
    `MESH_FILE_PUSH_MAX_BYTES` (checked on the declared `size` first, then on what was read),
    and whatever `task_dispatch` raises; on any error the staged blob is deleted and no task
    exists. `tags` are extra payload keys the node ignores (a workspace sync names its
    workspace there, for its task-end hook). `action` `write_many` pushes a bundle of small
    files (a tar) that the node unpacks into the folder `path`. Audited by `task_dispatch`
    (the action, the path; a bundle's count of files).
    """
    if not selectors.node_usable_for(user=actor, node=node):
        raise NotFound("No such node.")
    if not isinstance(path, str) or not path.strip() or len(path) > 4096 or "\x00" in path:
        raise ValidationFailed(fields={"path": ["A path of 1-4096 characters."]})
    limit = int(settings.MESH_FILE_PUSH_MAX_BYTES)
    if size is not None and size > limit:
        raise FilePushTooLarge(f"The file is larger than the limit of {limit} bytes.")
    staged = _HashingSource(source, limit)
    name = push_blob_name()
    try:
        if hasattr(source, "temporary_file_path"):
            # An upload Django has already written to disk: hash it, then storage moves it.
            for _ in staged.chunks():
                pass
            name = default_storage.save(name, source)
        else:
            name = default_storage.save(name, staged)
        return task_dispatch(
            actor=actor,
            node=node,
            kind=TaskKind.FILES,
            payload={**(tags or {}), "action": action, "path": path},
            chat_session_id=chat_session_id,
            staged={"blob": name, "size": staged.size_read, "sha256": staged.digest.hexdigest()},
            timeout=timeout,
            audit_context=audit_context,
        )
    except BaseException:
        push_blob_delete(name=name)
        raise


__all__ = ["DEFAULT_PUSH_TIMEOUT", "FilePushTooLarge", "file_push", "file_push_check_length"]
