"""The files skill's ranged read: any byte range of a file of any size, hostile bounds refused
before anything is opened, with the file's size and mtime so the hub notices a change."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from mesh.agent.skills.files import MAX_OFFSET, FileLimits, FileSkillError, run_files
from mesh.agent.workspace import Workspace

LIMITS = FileLimits(max_read_bytes=100, max_write_bytes=50)
DATA = bytes(range(256)) * 2  # 512 bytes: larger than the read limit


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "root"
    root.mkdir()
    (root / "big.bin").write_bytes(DATA)
    return Workspace(root)


def _read(ws: Workspace, **extra: Any) -> dict[str, Any]:
    return run_files(ws, {"action": "read", "path": "big.bin", **extra}, LIMITS)


def test_ranges_piece_together_a_file_larger_than_the_read_limit(ws: Workspace) -> None:
    with pytest.raises(FileSkillError) as whole:
        _read(ws)
    assert whole.value.code == "too_large"
    st = os.stat(ws.root / "big.bin")
    pieces = b""
    for offset in range(0, len(DATA), 100):
        result = _read(ws, offset=offset, length=100)
        assert result["offset"] == offset
        assert result["file_size"] == len(DATA)
        assert result["mtime_ns"] == st.st_mtime_ns
        assert result["mtime"] == st.st_mtime
        assert result["encoding"] == "base64"
        assert result["size"] == min(100, len(DATA) - offset)
        pieces += base64.b64decode(result["content"])
    assert pieces == DATA


def test_length_is_capped_at_the_read_limit(ws: Workspace) -> None:
    result = _read(ws, offset=10, length=10**9)
    assert result["size"] == 100
    assert base64.b64decode(result["content"]) == DATA[10:110]
    assert _read(ws, offset=0)["size"] == 100  # offset alone: one read limit's worth


def test_text_files_come_back_as_base64_too(ws: Workspace) -> None:
    """A range may cut a UTF-8 character in two: ranged reads are always base64."""
    (ws.root / "t.txt").write_text("héllo")
    result = run_files(ws, {"action": "read", "path": "t.txt", "offset": 0, "length": 2}, LIMITS)
    assert result["encoding"] == "base64"
    assert base64.b64decode(result["content"]) == "héllo".encode()[:2]


@pytest.mark.parametrize("offset", [len(DATA), len(DATA) + 1, MAX_OFFSET])
def test_a_range_past_the_end_is_empty(ws: Workspace, offset: int) -> None:
    result = _read(ws, offset=offset, length=50)
    assert (result["size"], result["content"], result["file_size"]) == (0, "", len(DATA))


def test_zero_length_reads_nothing(ws: Workspace) -> None:
    assert _read(ws, offset=3, length=0)["size"] == 0


@pytest.mark.parametrize(
    "bounds",
    [
        {"offset": -1},
        {"offset": -(2**70)},
        {"offset": MAX_OFFSET + 1},
        {"offset": 2**64},
        {"offset": 1.5},
        {"offset": 1.0},
        {"offset": "10"},
        {"offset": None},
        {"offset": True},
        {"offset": [1]},
        {"offset": {"a": 1}},
        {"length": -5},
        {"length": 2**64},
        {"length": "100"},
        {"length": False},
        {"length": float("nan")},
        {"length": float("inf")},
        {"offset": 0, "length": -1},
    ],
)
def test_hostile_bounds_are_refused_before_anything_is_read(
    ws: Workspace, bounds: dict[str, Any]
) -> None:
    with pytest.raises(FileSkillError) as refused:
        _read(ws, **bounds)
    assert refused.value.code == "invalid_range"
    assert refused.value.rejected is True
    # ...even for a path that does not exist: the bounds are judged first.
    with pytest.raises(FileSkillError) as missing:
        run_files(ws, {"action": "read", "path": "nope", **bounds}, LIMITS)
    assert missing.value.code == "invalid_range"


def test_ranged_reads_stay_in_the_jail(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"s" * 300)
    (ws.root / "link").symlink_to(tmp_path / "secret")
    for path in ("../secret", str(tmp_path / "secret"), "link"):
        with pytest.raises(FileSkillError) as refused:
            run_files(ws, {"action": "read", "path": path, "offset": 0, "length": 10}, LIMITS)
        assert refused.value.code == "path_outside_workspace"


def test_ranged_reads_refuse_what_is_not_a_regular_file(ws: Workspace) -> None:
    (ws.root / "dir").mkdir()
    os.mkfifo(ws.root / "fifo")
    for path, code in (("dir", "not_a_file"), ("fifo", "not_a_file"), ("gone", "not_found")):
        with pytest.raises(FileSkillError) as refused:
            run_files(ws, {"action": "read", "path": path, "offset": 0, "length": 10}, LIMITS)
        assert refused.value.code == code
