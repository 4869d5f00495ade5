"""The workspace jail: paths resolve (symlinks included) inside the root or are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mesh.agent.workspace import Workspace, WorkspaceError, resolve_in_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "sub" / "a.txt").write_text("a")
    (tmp_path / "work-evil").mkdir()
    (tmp_path / "work-evil" / "secret").write_text("s")
    (tmp_path / "outside.txt").write_text("o")
    return work


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "."),
        (".", "."),
        ("sub", "sub"),
        ("sub/a.txt", "sub/a.txt"),
        ("sub/../sub/./a.txt", "sub/a.txt"),
        ("new/dir/file.txt", "new/dir/file.txt"),
    ],
)
def test_paths_inside_the_root_resolve(root: Path, path: str, expected: str) -> None:
    ws = Workspace(root)
    resolved = ws.resolve(path)
    assert resolved == (root / expected).resolve()
    assert ws.relative(resolved) == expected


def test_absolute_path_inside_the_root_is_allowed(root: Path) -> None:
    assert resolve_in_root(root, str(root / "sub" / "a.txt")) == root / "sub" / "a.txt"


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "..",
        "../outside.txt",
        "/etc/passwd",
        "/",
        "../work-evil/secret",
        "sub/../../work-evil",
        "~",
    ],
)
def test_escapes_are_refused(root: Path, path: str) -> None:
    with pytest.raises(WorkspaceError) as info:
        Workspace(root).resolve(path)
    assert info.value.code == "path_outside_workspace"
    assert str(info.value) == f"The path {path!r} is outside the workspace."


def test_sibling_directory_sharing_the_prefix_is_refused(root: Path, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError):
        resolve_in_root(root, str(tmp_path / "work-evil" / "secret"))


def test_symlink_inside_the_root_pointing_out_is_refused(root: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside.txt", root / "link.txt")
    os.symlink(tmp_path / "work-evil", root / "linkdir")
    os.symlink(tmp_path / "missing-target", root / "dangling")
    for path in ("link.txt", "linkdir/secret", "linkdir", "dangling"):
        with pytest.raises(WorkspaceError):
            resolve_in_root(root, path)


def test_symlink_inside_pointing_inside_is_followed(root: Path) -> None:
    os.symlink(root / "sub" / "a.txt", root / "alias")
    assert resolve_in_root(root, "alias") == root / "sub" / "a.txt"


def test_root_given_through_a_symlink_still_jails(root: Path, tmp_path: Path) -> None:
    os.symlink(root, tmp_path / "rootlink")
    ws = Workspace(tmp_path / "rootlink")
    assert ws.root == root
    assert ws.resolve("sub/a.txt") == root / "sub" / "a.txt"
    with pytest.raises(WorkspaceError):
        ws.resolve("../work-evil")


def test_nul_byte_is_refused(root: Path) -> None:
    with pytest.raises(WorkspaceError) as info:
        resolve_in_root(root, "a\x00b")
    assert info.value.code == "invalid_path"


def test_ensure_creates_the_root_private(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "fresh" / "root")
    assert ws.ensure() == tmp_path / "fresh" / "root"
    assert (tmp_path / "fresh" / "root").is_dir()
    assert ((tmp_path / "fresh" / "root").stat().st_mode & 0o777) == 0o700
