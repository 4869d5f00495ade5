"""`mesh.agent.ignore` against real `git check-ignore`: table-driven, one temporary repository per
case, every listed path made on disk (a trailing `/` makes a folder), and the module's answer
for each, read from disk (the agent) and from texts (the hub's mirror), must be git's."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from mesh.agent.ignore import IgnoreRules, parse_patterns

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

#: (name, {ignore file: text}, paths). Paths ending in "/" are folders.
CASES: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "names at any depth",
        {".gitignore": "*.log\nbuild\n"},
        [
            "a.log",
            "src/b.log",
            "src/deep/c.log",
            "log",
            "a.log.txt",
            "build/",
            "src/build/",
            "build/x.txt",
            "src/build/y.txt",
            "buildx/",
            "buildx/z",
        ],
    ),
    (
        "negation re-includes",
        {".gitignore": "*.log\n!keep.log\n!src/**/important.log\n"},
        [
            "a.log",
            "keep.log",
            "src/keep.log",
            "src/important.log",
            "src/x/important.log",
            "important.log",
            "src/other.log",
        ],
    ),
    (
        "no re-include inside an excluded folder",
        {".gitignore": "out/\n!out/keep.txt\n", "out/.gitignore": "!keep.txt\n"},
        ["out/", "out/keep.txt", "out/sub/keep.txt", "other/out/", "other/out/keep.txt"],
    ),
    (
        "ignore all but folders and one kind",
        {".gitignore": "*\n!*/\n!*.py\n"},
        ["a.py", "a.txt", "src/", "src/b.py", "src/b.txt", "src/deep/c.py", "Makefile"],
    ),
    (
        "anchoring with a leading or middle slash",
        {".gitignore": "/root.txt\ndoc/frotz\n/bin/\n"},
        [
            "root.txt",
            "sub/root.txt",
            "doc/frotz",
            "a/doc/frotz",
            "bin/",
            "bin/tool",
            "sub/bin/",
            "sub/bin/tool",
        ],
    ),
    (
        "trailing slash: folders only",
        {".gitignore": "cache/\nlogs/\n"},
        ["cache/", "cache/a", "sub/cache/", "sub/cache/b", "logs", "sub/logs"],
    ),
    (
        "double stars",
        {".gitignore": "**/tmp\nabc/**\na/**/b\n**/deep/**/leaf.txt\nx**y\n"},
        [
            "tmp",
            "q/tmp",
            "q/r/tmp/",
            "q/r/tmp/f",
            "abc/",
            "abc/x",
            "abc/y/z",
            "abcx/f",
            "a/b",
            "a/x/b",
            "a/x/y/b",
            "ab",
            "deep/leaf.txt",
            "p/deep/q/r/leaf.txt",
            "xy",
            "x1y",
            "x/y",
            "xay/f",
        ],
    ),
    (
        "escapes: literal ! and # and trailing spaces",
        {".gitignore": "\\!bang\n\\#hash\n# a comment\n#notignored\nspace\\ \ntrail   \n"},
        [
            "!bang",
            "bang",
            "#hash",
            "hash",
            "#notignored",
            "notignored",
            "space ",
            "space",
            "trail",
            "trail   ",
        ],
    ),
    (
        "wildcards and brackets",
        {".gitignore": "?.tmp\nfile[0-9].txt\n[!a]x.bin\nname[[:digit:]]\n*.[oa]\ncl[]]\n"},
        [
            "a.tmp",
            "ab.tmp",
            "file1.txt",
            "filea.txt",
            "bx.bin",
            "ax.bin",
            "name7",
            "namex",
            "m.o",
            "m.a",
            "m.c",
            "cl]",
            "sub/file2.txt",
        ],
    ),
    (
        "nested files apply to their folder; deeper wins",
        {
            ".gitignore": "*.dat\n",
            "pkg/.gitignore": "!*.dat\nlocal.txt\n/anchored.txt\n",
            "pkg/sub/.gitignore": "*.dat\n",
        },
        [
            "a.dat",
            "pkg/a.dat",
            "pkg/sub/a.dat",
            "pkg/other/a.dat",
            "local.txt",
            "pkg/local.txt",
            "pkg/x/local.txt",
            "pkg/anchored.txt",
            "pkg/x/anchored.txt",
            "anchored.txt",
        ],
    ),
    (
        "later lines win; last match decides",
        {".gitignore": "!a.txt\na.txt\nb.txt\n!b.txt\n*.md\n!README.md\nREADME.md\n"},
        ["a.txt", "b.txt", "x.md", "README.md"],
    ),
    (
        "CRLF lines, a BOM, blanks",
        {".gitignore": "\ufeff*.bak\r\n\r\n  \r\n/dist\r\n"},
        ["x.bak", "dist/", "dist/a", "sub/dist/"],
    ),
    (
        "a pattern that ends in a backslash never matches",
        {".gitignore": "odd\\\nfine\n"},
        ["odd", "odd\\", "fine"],
    ),
    (
        "a folder re-included under an excluded parent pattern",
        {".gitignore": "logs/*\n!logs/keep/\nlogs/keep/*.tmp\n"},
        ["logs/", "logs/a", "logs/keep/", "logs/keep/b", "logs/keep/c.tmp"],
    ),
    (
        "more shapes: one-level stars, literal specials, folder stars",
        {
            ".gitignore": "/*.c\na/*/b\n\\*star\n\\[br\n[a-c]*.q\n[^x]y.r\n"
            "d/**/\n!\n/\n*/only-one-down\n",
            "sub/.gitignore": "*\n!.gitignore\n!keep/\n",
        },
        [
            "x.c",
            "s/x.c",
            "a/z/b",
            "a/z/w/b",
            "*star",
            "xstar",
            "[br",
            "b.q",
            "d.q",
            "ay.r",
            "xy.r",
            "d/",
            "d/e/",
            "d/e/f",
            "d/g",
            "t/only-one-down",
            "t/u/only-one-down",
            "sub/a",
            "sub/keep/",
            "sub/keep/b",
            "sub/other/",
        ],
    ),
    (
        ".git is never synced",
        {},
        [".git/", ".git/config", "sub/.git", "git", ".gitx"],
    ),
]


def _make(root: Path, files: dict[str, str], paths: list[str]) -> None:
    for rel in paths:
        target = root / rel.rstrip("/")
        if rel.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("x")
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("utf-8"))


def _git_ignored(root: Path, paths: list[str]) -> set[str]:
    # `.git` itself is git's own: check-ignore never answers for it, so it is not asked.
    asked = [p.rstrip("/") for p in paths if ".git" not in p.split("/")]
    done = subprocess.run(
        ["git", "-c", "core.excludesFile=/dev/null", "check-ignore", "--stdin", "-z"],
        cwd=root,
        input="\0".join(asked).encode(),
        capture_output=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return {p for p in done.stdout.decode().split("\0") if p}


@pytest.mark.parametrize(("files", "paths"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_rules_are_gits(tmp_path: Path, files: dict[str, str], paths: list[str]) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    _make(root, files, paths)
    by_git = _git_ignored(root, paths)
    from_disk = IgnoreRules.from_folder(root)
    from_texts = IgnoreRules.from_texts(files)
    for path in paths:
        rel, is_dir = path.rstrip("/"), path.endswith("/")
        expected = ".git" in rel.split("/") or rel in by_git
        assert from_disk.ignored(rel, is_dir) == expected, (path, "disk", expected)
        assert from_texts.ignored(rel, is_dir) == expected, (path, "texts", expected)


def test_invalid_patterns_are_left_out() -> None:
    assert parse_patterns("[unclosed\nname[[:nosuch:]]\nok\n") != []
    assert len(parse_patterns("[unclosed\nname[[:nosuch:]]\nok\n")) == 1


def test_an_ignore_file_that_is_a_symlink_is_not_read(tmp_path: Path) -> None:
    """The agent never reads through a symlink (one could point out of the root)."""
    outside = tmp_path / "outside.txt"
    outside.write_text("*\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / ".gitignore").symlink_to(outside)
    assert IgnoreRules.from_folder(root).ignored("a.txt") is False


#: Pieces random patterns are made of: every special of gitignore(5) and wildmatch.
ATOMS = ["a", "b", "*", "**", "?", "/", "[ab]", "[!a]", "[a-c]", "\\*", "\\!", "!", "#", " "]
ATOMS += ["\\ ", ".", "x", "[]a]", "[^b]", "\\", "[[:alpha:]]", "[a-]", "[-a]", "]", "\\#"]
NAMES = ["a", "b", "ab", "ba", "x", "a.b", "*", "!a", "#a", "a ", "aa", "c", "-", "]", "\\"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_patterns_agree_with_git(tmp_path: Path, seed: int) -> None:
    """Random ignore files (one per folder, negations included) and random paths below them:
    every answer is git's (one `git check-ignore` for all)."""
    rnd = random.Random(seed)
    root = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    asked: list[str] = []
    for i in range(120):
        lines = []
        for n in range(rnd.randint(1, 4)):
            line = "".join(rnd.choice(ATOMS) for _ in range(rnd.randint(1, 5)))
            lines.append(("!" if n and rnd.random() < 0.3 else "") + line)
        folder = root / f"s{i}"
        folder.mkdir()
        (folder / ".gitignore").write_text("\n".join(lines) + "\n")
        for _ in range(8):
            rel = "/".join(rnd.choice(NAMES) for _ in range(rnd.randint(1, 3)))
            target = folder / rel
            try:
                if rnd.random() < 0.3:
                    target.mkdir(parents=True, exist_ok=True)
                elif not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text("x")
            except OSError:
                continue  # a file where a folder was wanted, or the other way round
            asked.append(f"s{i}/{rel}")
    by_git = _git_ignored(root, asked)
    assert len(by_git) > len(asked) // 10  # the patterns do match things
    rules = IgnoreRules.from_folder(root)
    wrong = [p for p in asked if rules.ignored(p, (root / p).is_dir()) != (p in by_git)]
    assert wrong == [], [(p, p in by_git) for p in wrong[:20]]
