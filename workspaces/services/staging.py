"""Staging files of transfers coming in from nodes, under the mirror's storage.

A transfer's ranges are written at their offsets into one file per transfer and generation
(`staging/t<pk>-g<generation>`), named by the hub, never by a path a node or person sends. The
mirror's storage is a folder (`CORTEX_WORKSPACE_ROOT`, shared by every hub process), so a range
is written with `pwrite` and nothing is ever held whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import datetime

from workspaces.storage import mirror_storage

STAGING = "staging"
_HASH_CHUNK = 1024 * 1024


def staging_name(*, transfer_id: int, generation: int) -> str:
    return f"t{int(transfer_id)}-g{int(generation)}"


def staging_path(*, transfer_id: int, generation: int) -> str:
    """The staging file's local path."""
    name = staging_name(transfer_id=transfer_id, generation=generation)
    return str(mirror_storage().path(f"{STAGING}/{name}"))


def staging_drop(*, transfer_id: int, generation: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(staging_path(transfer_id=transfer_id, generation=generation))


def staging_write(*, transfer_id: int, generation: int, offset: int, data: bytes) -> None:
    """Write `data` at `offset` (the file is created 0600 on first use; empty data creates it)."""
    path = staging_path(transfer_id=transfer_id, generation=generation)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if data:
            os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def staging_sha256(*, transfer_id: int, generation: int) -> tuple[str, int]:
    """The staged file's sha256 and size, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(staging_path(transfer_id=transfer_id, generation=generation), "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def staging_sweep(*, current: set[str], cutoff: datetime) -> int:
    """Delete staging files not in `current` (names) last written before `cutoff`."""
    storage = mirror_storage()
    try:
        _, names = storage.listdir(STAGING)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        full = f"{STAGING}/{name}"
        if name not in current and storage.get_modified_time(full) < cutoff:
            storage.delete(full)
            removed += 1
    return removed
