"""The one workspace path rule (`clean_relative_path`), shared by the hub and the agent."""

from __future__ import annotations

import pytest

from mesh.agent.workspace import WorkspaceError, clean_relative_path


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("a.txt", "a.txt"),
        ("./a//b/./c.py", "a/b/c.py"),
        ("dir/", "dir"),
        (".skills/x/run.sh", ".skills/x/run.sh"),
        ("a..b/..c", "a..b/..c"),
        ("ünïcode/ファイル", "ünïcode/ファイル"),
    ],
)
def test_plain_paths_are_normalised(text: str, clean: str) -> None:
    assert clean_relative_path(text) == clean


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("..", "path_outside_workspace"),
        ("../x", "path_outside_workspace"),
        ("a/../../x", "path_outside_workspace"),
        ("a/b/..", "path_outside_workspace"),
        ("/etc/passwd", "path_outside_workspace"),
        ("//server/share", "path_outside_workspace"),
        ("~root/x", "path_outside_workspace"),
        ("c:/windows", "path_outside_workspace"),
        ("a\\..\\..\\x", "invalid_path"),
        ("\\\\server\\share", "invalid_path"),
        ("a\x00b", "invalid_path"),
        ("a\nb", "invalid_path"),
        ("a\x7fb", "invalid_path"),
        ("", "invalid_path"),
        ("./", "invalid_path"),
        ("x" * 256, "invalid_path"),
        ("a/" * 2100, "invalid_path"),
        (None, "invalid_path"),
        (b"a", "invalid_path"),
    ],
)
def test_everything_else_is_refused(text: object, code: str) -> None:
    with pytest.raises(WorkspaceError) as info:
        clean_relative_path(text)
    assert info.value.code == code


def test_the_root_only_when_allowed() -> None:
    assert clean_relative_path("", allow_root=True) == ""
    assert clean_relative_path("./", allow_root=True) == ""
    with pytest.raises(WorkspaceError):
        clean_relative_path("..", allow_root=True)
