"""Unpacking a pushed bundle of small files (`files` `write_many`): many files, one task.

A bundle is an uncompressed tar the hub builds from its mirror. It is checked whole before
anything is written, and fails closed: a member that is not a plain regular file (a link, a
device, a directory, a sparse file), a name the one path rule refuses (absolute, `..`, control
characters), a duplicate, or a target the jail refuses (a symlink pointing out of the root)
refuses the bundle and writes nothing. Then each file is written to a temporary name next to
its target and renamed, so no half file is ever visible, even after a kill mid-bundle. A member
whose mode has the owner's executable bit is written executable (the umask applies).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
import tarfile
from pathlib import Path
from typing import Any

from ..workspace import Workspace, WorkspaceError, clean_relative_path
from .files import FileSkillError
from .watch import note_pushed

#: The name a bundle is received under (as `.bundle.push-<hex>`, which a manifest skips).
BUNDLE_TEMP = "bundle"
#: Most members one bundle may hold (the hub sends at most 500).
MAX_MEMBERS = 2000
#: Only these member types are files; everything else is refused.
_PLAIN = (tarfile.REGTYPE, tarfile.AREGTYPE)
_COPY = 1024 * 1024


def bundle_folder(ws: Workspace, payload: dict[str, Any]) -> Path:
    """The jailed folder a bundle unpacks into (created if missing; refused if a file)."""
    value = payload.get("path")
    if not isinstance(value, str):
        raise FileSkillError("invalid_input", "path must be a string path")
    try:
        folder = ws.resolve(value)
    except WorkspaceError as exc:
        raise FileSkillError(exc.code, str(exc), rejected=True) from exc
    if folder.exists() and not folder.is_dir():
        raise FileSkillError("not_a_directory", f"{ws.relative(folder)} is not a directory.")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _refuse(message: str, code: str = "bundle_refused") -> FileSkillError:
    return FileSkillError(code, message, rejected=True)


def _target(ws: Workspace, folder: Path, rel: str, parents: dict[Path, bool]) -> Path:
    """`folder/rel`, refused unless every folder on the way is real (no symlink, even one
    pointing inside the root) and the name itself is no symlink or directory. Each parent
    folder is resolved once per bundle (`parents`)."""
    target = folder / rel
    parent = target.parent
    if parent not in parents:
        try:
            parents[parent] = ws.resolve(parent) == parent
        except WorkspaceError:
            parents[parent] = False
    if not parents[parent]:
        raise _refuse(f"The bundle member {rel!r} would be written through a symlink.")
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    except NotADirectoryError as exc:
        raise _refuse(f"The bundle member {rel!r} is under a file here.") from exc
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(f"The bundle member {rel!r} is a symlink here.")
    if stat.S_ISDIR(st.st_mode):
        raise _refuse(f"The bundle member {rel!r} is a directory here.")
    return target


def _plan(ws: Workspace, folder: Path, tar: tarfile.TarFile) -> list[tuple[tarfile.TarInfo, Path]]:
    """Every member with its jailed target, or a refusal of the whole bundle."""
    members = tar.getmembers()
    if len(members) > MAX_MEMBERS:
        raise _refuse(f"The bundle holds more than {MAX_MEMBERS} members.")
    plan: list[tuple[tarfile.TarInfo, Path]] = []
    seen: set[str] = set()
    parents: dict[Path, bool] = {}
    for member in members:
        if member.type not in _PLAIN:
            raise _refuse(f"The bundle member {member.name!r} is not a regular file.")
        try:
            rel = clean_relative_path(member.name)
        except WorkspaceError as exc:
            raise _refuse(f"The bundle member {member.name!r} is refused: {exc}", exc.code) from exc
        if rel != member.name or rel in seen:
            raise _refuse(f"The bundle member {member.name!r} is not a plain, unique path.")
        seen.add(rel)
        plan.append((member, _target(ws, folder, rel, parents)))
    folders = {part for rel in seen for part in _prefixes(rel)}
    if folders & seen:
        raise _refuse("A bundle member is both a file and a folder of another.")
    return plan


def _prefixes(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def file_mode(payload: dict[str, Any]) -> int:
    """The mode a pushed file is created with (the umask applies, as in a git checkout): 0o777
    when the hub's `mode` has the owner's executable bit, else 0o666."""
    mode = payload.get("mode")
    executable = isinstance(mode, int) and not isinstance(mode, bool) and mode & 0o100
    return 0o777 if executable else 0o666


def _write_one(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> tuple[str, int]:
    """One member to a temporary name next to its target, then renamed; returns its sha256 and
    mode (executable when the member's mode is: the executable bit is synced)."""
    source = tar.extractfile(member)
    if source is None:
        raise _refuse(f"The bundle member {member.name!r} has no data.")
    if not target.parent.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.push-{secrets.token_hex(6)}"
    digest = hashlib.sha256()
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(temp, flags, file_mode({"mode": member.mode}))
        with os.fdopen(fd, "wb") as fh:
            while data := source.read(_COPY):
                fh.write(data)
                digest.update(data)
            mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    return digest.hexdigest(), mode


def bundle_write(ws: Workspace, folder: Path, bundle: Path) -> list[dict[str, Any]]:
    """Unpack the received bundle into `folder`; returns each file's path, size and sha256."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            plan = _plan(ws, folder, tar)
            written: list[dict[str, Any]] = []
            for member, target in plan:
                digest, mode = _write_one(tar, member, target)
                note_pushed(
                    target, digest, real=True
                )  # a watch of this folder does not echo it back
                written.append(
                    {"path": member.name, "size": int(member.size), "sha256": digest, "mode": mode}
                )
    except (tarfile.TarError, EOFError) as exc:
        raise _refuse("The bundle is not a readable tar.", "bundle_invalid") from exc
    except OSError as exc:
        raise FileSkillError("os_error", f"write_many: {exc.strerror or exc}") from exc
    return written
