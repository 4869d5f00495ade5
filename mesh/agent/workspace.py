"""The workspace jail: every path the agent touches is resolved (symlinks included) inside a root.

Pure Python (no Django). Paths are resolved with `os.path.realpath`, so `..`, symlinks inside the
root that point out of it and dangling symlinks are followed before the containment check; a
sibling directory sharing the root's prefix (`/srv/work-evil` next to `/srv/work`) is outside.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["Workspace", "WorkspaceError", "clean_relative_path", "resolve_in_root"]

#: Longest workspace path (bytes of UTF-8) and longest single name in it.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


class WorkspaceError(ValueError):
    """A path that is not inside the workspace root (or is malformed); nothing was touched."""

    code = "path_outside_workspace"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


def _contains(root: str, candidate: str) -> bool:
    return candidate == root or candidate.startswith(root.rstrip(os.sep) + os.sep)


def clean_relative_path(text: object, *, allow_root: bool = False) -> str:
    """The one path rule of shared workspaces (hub and agent): a relative POSIX path, normalised.

    Fails closed: anything not positively plain is refused. `WorkspaceError` with code
    `invalid_path` (not a string, empty, NUL or another control character, a backslash, too
    long) or `path_outside_workspace` (absolute, `~`, a drive letter, any `..` component).
    Returns "" for the root itself only when `allow_root`.
    """
    if not isinstance(text, str):
        raise WorkspaceError("The path must be a string.", code="invalid_path")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise WorkspaceError("The path contains a control character.", code="invalid_path")
    if "\\" in text:
        raise WorkspaceError("The path contains a backslash.", code="invalid_path")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise WorkspaceError("The path is too long.", code="invalid_path")
    if text.startswith(("/", "~")) or (len(text) > 1 and text[1] == ":"):
        raise WorkspaceError(f"The path {text!r} is not relative to the workspace.")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    for part in parts:
        if part == "..":
            raise WorkspaceError(f"The path {text!r} leaves the workspace.")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise WorkspaceError("A name in the path is too long.", code="invalid_path")
    if not parts and not allow_root:
        raise WorkspaceError("The path names no file.", code="invalid_path")
    return "/".join(parts)


def resolve_in_root(root: str | os.PathLike[str], path: str | os.PathLike[str] = "") -> Path:
    """Resolve `path` (relative to root, or absolute) and return it if it lies inside root."""
    text = os.fspath(path)
    if "\x00" in text:
        raise WorkspaceError("The path contains a NUL byte.", code="invalid_path")
    real_root = os.path.realpath(os.fspath(root))
    candidate = os.path.realpath(os.path.join(real_root, os.path.expanduser(text) if text else ""))
    if not _contains(real_root, candidate):
        raise WorkspaceError(f"The path {text!r} is outside the workspace.")
    return Path(candidate)


class Workspace:
    """A workspace root; `resolve` jails paths inside it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.realpath(os.fspath(root)))

    def ensure(self) -> Path:
        """Create the root (mode 0700) if it does not exist yet."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.root

    def resolve(self, path: str | os.PathLike[str] = "") -> Path:
        """The real path of `path` inside the root; raises WorkspaceError outside it."""
        return resolve_in_root(self.root, path)

    def relative(self, path: Path) -> str:
        """The path as shown to users: relative to the root ("." for the root itself)."""
        rel = os.path.relpath(path, self.root)
        return "." if rel == "." else rel
