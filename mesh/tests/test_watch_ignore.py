"""The lead's watcher filters with git's rules (`mesh.agent.ignore`): nested ignore files apply
to their folder, `!` re-includes, an excluded folder is never entered, and an edited ignore file
counts at the next scan."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mesh.agent.skills.watch import scan, watch


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def test_the_watcher_honours_nested_files_and_negation(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".gitignore": "*.log\n!keep.log\nbuild/\n",
            "keep.log": "k",
            "debug.log": "d",
            "build/out.o": "o",
            "src/app.py": "a",
            "src/.cortexignore": "secrets.txt\n!*.log\n",
            "src/secrets.txt": "s",
            "src/trace.log": "t",
            "src/gen/.gitignore": "*\n!.gitignore\n!*.h\n",
            "src/gen/a.c": "c",
            "src/gen/a.h": "h",
            ".git/config": "g",
            "docs/.git": "a submodule's pointer",
        },
    )
    assert sorted(scan(tmp_path)) == [
        ".gitignore",
        "keep.log",
        "src/.cortexignore",
        "src/app.py",
        "src/gen/.gitignore",
        "src/gen/a.h",
        "src/trace.log",
    ]


def test_an_edited_ignore_file_counts_at_the_next_scan(tmp_path: Path) -> None:
    _tree(tmp_path, {".gitignore": "*.tmp\n", "a.tmp": "a", "b.txt": "b"})
    assert sorted(scan(tmp_path)) == [".gitignore", "b.txt"]
    (tmp_path / ".gitignore").write_text("*.txt\n")
    os.utime(tmp_path / ".gitignore", ns=(1, 1))  # a new mtime even on a coarse clock
    assert sorted(scan(tmp_path)) == [".gitignore", "a.tmp"]


def test_an_ignore_file_that_is_a_symlink_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("*\n")
    root = tmp_path / "root"
    _tree(root, {"a.txt": "a"})
    (root / ".gitignore").symlink_to(outside)
    assert sorted(scan(root)) == ["a.txt"]


def test_a_mode_only_change_is_reported_when_the_hub_sends_modes(tmp_path: Path) -> None:
    """The executable bit is synced: a `chmod +x` alone is a change (with the file's mode);
    an older hub's watch (no `executable` list) is answered as before."""
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o644)
    known = {"run.sh": hashlib.sha256(script.read_bytes()).hexdigest()}
    assert watch(tmp_path, {"known": known, "executable": [], "wait": 0})["changes"] == []
    script.chmod(0o755)
    changes = watch(tmp_path, {"known": known, "executable": [], "wait": 5})["changes"]
    assert [(c["op"], c["path"], c["mode"]) for c in changes] == [("put", "run.sh", 0o755)]
    assert watch(tmp_path, {"known": known, "executable": ["run.sh"], "wait": 0})["changes"] == []
    assert watch(tmp_path, {"known": known, "wait": 0})["changes"] == []
