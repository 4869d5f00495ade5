"""Staged files of pushes to nodes: one blob in Django storage per push, until its task ends.

The web process that stages a blob and the gRPC process that streams it may differ, so a blob is
named in the task's payload and lives in storage; nothing about it is kept in memory.
"""

from __future__ import annotations

import logging
import uuid
from typing import IO, Any

from django.core.files.storage import default_storage
from django.db import transaction

from cortex.errors import NotFound

logger = logging.getLogger("cortex.mesh")

BLOB_PREFIX = "mesh/push/"


def push_blob_name() -> str:
    """A fresh storage name for a staged push."""
    return f"{BLOB_PREFIX}{uuid.uuid4().hex}"


def push_blob_of(*, kind: str, payload: Any) -> str:
    """The staged blob a task streams to its node, or "" (an inline write, another action)."""
    if (
        kind != "files"
        or not isinstance(payload, dict)
        or payload.get("action")
        not in (
            "write",
            "write_many",
        )
    ):
        return ""
    blob = payload.get("blob")
    # Only our own staging area: a payload can never make the hub stream another stored file.
    if isinstance(blob, str) and blob.startswith(BLOB_PREFIX) and ".." not in blob:
        return blob
    return ""


def push_blob_open(*, name: str) -> IO[bytes]:
    """Open a staged blob for reading (the gRPC process streams it); NotFound once released."""
    if not name.startswith(BLOB_PREFIX) or ".." in name:
        raise NotFound("No such staged file.", code="push_blob_missing")
    try:
        return default_storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise NotFound("No such staged file.", code="push_blob_missing") from exc


def push_blob_delete(*, name: str) -> None:
    """Delete a staged blob now; a missing one is fine (released twice, or never written)."""
    try:
        default_storage.delete(name)
    except OSError:  # storage trouble must not fail the task's state change
        logger.warning("could not delete staged push %s", name, exc_info=True)


def push_blob_release(*, kind: str, payload: Any) -> None:
    """A task of this kind and payload reached a terminal state: delete its staged blob once
    that is committed."""
    name = push_blob_of(kind=kind, payload=payload)
    if name:
        transaction.on_commit(lambda: push_blob_delete(name=name))
