"""The files skill: list, stat, read, write, delete, move and copy inside the workspace root."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat as stat_module
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..workspace import Workspace, WorkspaceError

ACTIONS = ("list", "stat", "read", "write", "delete", "move", "copy", "manifest", "watch")
MAX_LIST_ENTRIES = 5000
#: The largest offset a ranged read takes (2**53: exact in JSON numbers, far beyond any file).
MAX_OFFSET = 2**53


class FileSkillError(Exception):
    """A refused or failed file action; `rejected` means the jail refused it (nothing touched)."""

    def __init__(self, code: str, message: str, *, rejected: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.rejected = rejected


@dataclass
class FileLimits:
    max_read_bytes: int = 1024 * 1024
    max_write_bytes: int = 3 * 1024 * 1024


def _info(ws: Workspace, path: Path) -> dict[str, Any]:
    st = path.lstat()
    kind = (
        "directory"
        if stat_module.S_ISDIR(st.st_mode)
        else "symlink"
        if stat_module.S_ISLNK(st.st_mode)
        else "file"
        if stat_module.S_ISREG(st.st_mode)
        else "other"
    )
    return {
        "name": path.name if path != ws.root else ".",
        "path": ws.relative(path),
        "type": kind,
        "size": st.st_size,
        "mode": oct(stat_module.S_IMODE(st.st_mode)),
        "modified_at": datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).isoformat(),
    }


def _resolve(ws: Workspace, payload: dict[str, Any], key: str, *, required: bool = True) -> Path:
    value = payload.get(key)
    if value is None and not required:
        return ws.root
    if not isinstance(value, str):
        raise FileSkillError("invalid_input", f"{key} must be a string path")
    try:
        return ws.resolve(value)
    except WorkspaceError as exc:
        raise FileSkillError(exc.code, str(exc), rejected=True) from exc


def _existing(path: Path, label: str) -> None:
    if not path.exists():
        raise FileSkillError("not_found", f"{label} does not exist.")


#: Temporary names of pushes under way (`push.receive_push`): never part of a manifest.
PUSH_TEMP = re.compile(r"^\..+\.push-[0-9a-f]{12}$")
#: Most files one manifest lists (it travels in one 4 MiB result message).
MAX_MANIFEST_ENTRIES = 20000


def _sha256(path: Path) -> str | None:
    """The file's sha256, read without following a symlink swapped in meanwhile."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat_module.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        while data := fh.read(1024 * 1024):
            digest.update(data)
    return digest.hexdigest()


def manifest(ws: Workspace, folder: Path) -> dict[str, Any]:
    """Every regular file under `folder` as [path, size, mode, mtime, sha256] (created if
    missing). Symlinks are never followed (nor listed), devices, sockets and pipes are skipped,
    and so are pushes still being written."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    entries: list[list[Any]] = []
    truncated = False
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(top, d)))
        for name in sorted(files):
            if PUSH_TEMP.match(name):
                continue
            full = Path(top) / name
            try:
                st = full.lstat()
            except OSError:
                continue
            if not stat_module.S_ISREG(st.st_mode):
                continue  # symlinks, devices, sockets, pipes
            digest = _sha256(full)
            if digest is None:
                continue
            if len(entries) >= MAX_MANIFEST_ENTRIES:
                truncated = True
                break
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            entries.append([rel, st.st_size, stat_module.S_IMODE(st.st_mode), st.st_mtime, digest])
    return {"path": ws.relative(folder), "entries": entries, "truncated": truncated}


def _range_bound(payload: dict[str, Any], key: str, default: int) -> int:
    """A ranged read's `offset` / `length`: a non-negative int up to MAX_OFFSET, else refused
    (`invalid_range`) before anything is opened."""
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_OFFSET:
        raise FileSkillError(
            "invalid_range", f"{key} must be an integer from 0 to {MAX_OFFSET}.", rejected=True
        )
    return value


def read_range(
    ws: Workspace, path: Path, payload: dict[str, Any], limits: FileLimits
) -> dict[str, Any]:
    """Bytes `offset`..`offset+length` of a regular file (length capped at the read limit),
    always base64, with the file's total `file_size` and `mtime` / `mtime_ns` taken from the
    same open file: the hub pieces a large file together from such ranges and notices a file
    that changed meanwhile. A range past the end is empty (the hub sees `file_size`)."""
    offset = _range_bound(payload, "offset", 0)
    length = min(_range_bound(payload, "length", limits.max_read_bytes), limits.max_read_bytes)
    shown = ws.relative(path)
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise FileSkillError("not_found", f"{shown} does not exist.") from exc
    except OSError as exc:
        raise FileSkillError("not_a_file", f"{shown} is not a regular file.") from exc
    try:
        st = os.fstat(fd)
        if not stat_module.S_ISREG(st.st_mode):
            raise FileSkillError("not_a_file", f"{shown} is not a regular file.")
        data = os.pread(fd, length, offset) if length and offset < st.st_size else b""
    finally:
        os.close(fd)
    return {
        "path": shown,
        "offset": offset,
        "size": len(data),
        "file_size": st.st_size,
        "mtime": st.st_mtime,
        "mtime_ns": st.st_mtime_ns,
        "encoding": "base64",
        "content": base64.b64encode(data).decode("ascii"),
    }


def write_target(ws: Workspace, payload: dict[str, Any]) -> Path:
    """The jailed path a write replaces (refused outside the workspace or onto a directory)."""
    path = _resolve(ws, payload, "path")
    if path.is_dir():
        raise FileSkillError("is_a_directory", f"{ws.relative(path)} is a directory.")
    return path


def run_files(ws: Workspace, payload: dict[str, Any], limits: FileLimits) -> dict[str, Any]:
    """Perform one file action; returns the JSON result or raises FileSkillError."""
    action = payload.get("action")
    if action not in ACTIONS:
        raise FileSkillError("invalid_action", f"action must be one of {', '.join(ACTIONS)}")
    path = _resolve(ws, payload, "path", required=action != "list")
    shown = ws.relative(path)
    try:
        if action == "list":
            _existing(path, shown)
            if not path.is_dir():
                raise FileSkillError("not_a_directory", f"{shown} is not a directory.")
            names = sorted(os.listdir(path))
            entries = [_info(ws, path / n) for n in names[:MAX_LIST_ENTRIES]]
            return {"path": shown, "entries": entries, "truncated": len(names) > len(entries)}
        if action == "manifest":
            if path.exists() and not path.is_dir():
                raise FileSkillError("not_a_directory", f"{shown} is not a directory.")
            return manifest(ws, path)
        if action == "watch":
            if path.exists() and not path.is_dir():
                raise FileSkillError("not_a_directory", f"{shown} is not a directory.")
            from .watch import watch

            return watch(path, payload)
        if action == "stat":
            _existing(path, shown)
            return _info(ws, path)
        if action == "read" and ("offset" in payload or "length" in payload):
            return read_range(ws, path, payload, limits)
        if action == "read":
            _existing(path, shown)
            if not path.is_file():
                raise FileSkillError("not_a_file", f"{shown} is not a regular file.")
            size = path.stat().st_size
            if size > limits.max_read_bytes:
                raise FileSkillError(
                    "too_large", f"{shown} is {size} bytes; the limit is {limits.max_read_bytes}."
                )
            data = path.read_bytes()[: limits.max_read_bytes]
            encoding = payload.get("encoding") or "utf-8"
            if encoding == "base64":
                content = base64.b64encode(data).decode()
            else:
                try:
                    content = data.decode("utf-8")
                except UnicodeDecodeError:
                    content, encoding = base64.b64encode(data).decode(), "base64"
            return {"path": shown, "size": len(data), "encoding": encoding, "content": content}
        if action == "write":
            content = payload.get("content", "")
            if not isinstance(content, str):
                raise FileSkillError("invalid_input", "content must be a string")
            if payload.get("encoding") == "base64":
                try:
                    data = base64.b64decode(content, validate=True)
                except ValueError as exc:
                    raise FileSkillError("invalid_input", "content is not valid base64") from exc
            else:
                data = content.encode("utf-8")
            if len(data) > limits.max_write_bytes:
                raise FileSkillError(
                    "too_large",
                    f"{len(data)} bytes exceed the write limit of {limits.max_write_bytes}.",
                )
            if path.is_dir():
                raise FileSkillError("is_a_directory", f"{shown} is a directory.")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return {"path": shown, "size": len(data)}
        if action == "delete":
            _existing(path, shown)
            if path == ws.root:
                raise FileSkillError("refused", "The workspace root cannot be deleted.")
            if path.is_dir() and not path.is_symlink():
                if payload.get("recursive"):
                    shutil.rmtree(path)
                else:
                    path.rmdir()
            else:
                path.unlink()
            return {"path": shown, "deleted": True}
        # move, copy
        target = _resolve(ws, payload, "to_path")
        _existing(path, shown)
        if path == ws.root or target == ws.root:
            raise FileSkillError("refused", "The workspace root cannot be moved or replaced.")
        if target.exists() and not payload.get("overwrite"):
            raise FileSkillError("exists", f"{ws.relative(target)} exists already.")
        target.parent.mkdir(parents=True, exist_ok=True)
        if action == "move":
            shutil.move(str(path), str(target))
        elif path.is_dir():
            shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(path, target, follow_symlinks=False)
        return {"path": shown, "to_path": ws.relative(target)}
    except FileSkillError:
        raise
    except OSError as exc:
        raise FileSkillError("os_error", f"{action} {shown}: {exc.strerror or exc}") from exc
