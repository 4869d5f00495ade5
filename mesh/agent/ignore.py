"""Git's ignore rules, for the one decision "is this workspace path synced?" (hub and agent).

Both sides decide with this module: the lead's watcher (what it reports) and the hub (which of a
node's extra files are drift, which it leaves alone). The rules are git's (gitignore(5)):

- every `.gitignore` (and `.cortexignore`, read after it, so it wins) applies to its own folder
  and everything below; a deeper file overrides a shallower one, a later line an earlier one;
- `!` re-includes, `\\!` and `\\#` are a literal `!` / `#`, `#` starts a comment, trailing
  spaces go unless escaped, a trailing `/` matches folders only;
- a pattern with a `/` at its start or middle is anchored to its file's folder, one without
  matches a name at any depth; `*`, `?`, `[...]` never match `/`; `**/`, `/**/` and `/**` match
  any number of folders;
- a file inside an excluded folder is excluded, whatever a later `!` says (git never looks
  inside an excluded folder), and `.git` is always excluded.

Tested against real `git check-ignore`. Pure standard library, Python 3.9+, no Django.
"""

from __future__ import annotations

import os
import re
import stat as stat_module
from pathlib import Path
from re import Pattern
from typing import Callable

__all__ = ["IGNORE_FILES", "IgnoreRules", "parse_patterns"]

#: Read in this order in every folder: a later file's lines win over an earlier one's.
IGNORE_FILES = (".gitignore", ".cortexignore")
#: Names that are never synced, at any depth (git's own folder).
ALWAYS_IGNORED = (".git",)
#: An ignore file larger than this is not read (its patterns would cost more than they save).
MAX_IGNORE_FILE_BYTES = 1024 * 1024

_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\x0b\\x0c",
    "upper": "A-Z",
    "xdigit": "0-9a-fA-F",
}


class _Invalid(ValueError):
    """A pattern git would refuse to match with (it then matches nothing)."""


def _bracket(pattern: str, start: int) -> tuple[str, int]:
    """The regex class for the bracket expression at `pattern[start] == "["`, and the index
    after its `]`. Never matches `/` (git's WM_PATHNAME)."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    parts: list[str] = []
    first = True
    while True:
        if i >= len(pattern):
            raise _Invalid("unclosed [")
        ch = pattern[i]
        if ch == "]" and not first:
            i += 1
            break
        first = False
        if ch == "\\":
            i += 1
            if i >= len(pattern):
                raise _Invalid("trailing backslash in [")
            ch = pattern[i]
        elif ch == "[" and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end < 0:
                raise _Invalid("unclosed [:")
            name = pattern[i + 2 : end]
            if name not in _CLASSES:
                raise _Invalid("unknown character class")
            parts.append(_CLASSES[name])
            i = end + 2
            continue
        low = ch
        i += 1
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            high = pattern[i + 1]
            i += 2
            if high == "\\":
                if i >= len(pattern):
                    raise _Invalid("trailing backslash in [")
                high = pattern[i]
                i += 1
            if ord(high) >= ord(low):
                parts.append(f"{re.escape(low)}-{re.escape(high)}")
            continue
        parts.append(re.escape(low))
    body = "".join(parts)
    if negate:
        return f"[^/{body}]", i
    return (f"(?!/)[{body}]" if body else "(?!)"), i


def _translate(pattern: str) -> str:
    """A git wildmatch pattern (with WM_PATHNAME) as a regular expression."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise _Invalid("trailing backslash")
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif ch == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            at_start = i == 0 or pattern[i - 1] == "/"
            double = j - i >= 2 and at_start
            if double and j < n and pattern[j] == "/":
                out.append("(?:.*/)?")  # `**/`: zero or more folders
                i = j + 1
            elif double and j == n:
                out.append(".*")  # `/**` at the end (or `**` alone): everything
                i = j
            else:
                out.append("[^/]*")
                i = j
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[":
            cls, i = _bracket(pattern, i)
            out.append(cls)
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


#: (compiled, negated, dir_only, anchored): anchored patterns match the path relative to the
#: ignore file's folder, the others the last name only.
_Rule = tuple[Pattern[str], bool, bool, bool]


def _trim(line: str) -> str:
    """Trailing spaces go unless escaped with a backslash (which then stays, escaping it)."""
    end = len(line)
    while end > 0 and line[end - 1] == " ":
        backslashes = 0
        k = end - 2
        while k >= 0 and line[k] == "\\":
            backslashes += 1
            k -= 1
        if backslashes % 2:
            break
        end -= 1
    return line[:end]


def parse_patterns(text: str) -> list[_Rule]:
    """The rules of one ignore file's text, in file order (invalid patterns are left out)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    rules: list[_Rule] = []
    for raw in text.split("\n"):
        line = _trim(raw[:-1] if raw.endswith("\r") else raw)
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:]
        dir_only = line.endswith("/")
        if dir_only:
            line = line[:-1]
        if not line:
            continue
        anchored = "/" in line
        if line.startswith("/"):
            line = line[1:]
        try:
            compiled = re.compile(_translate(line), re.DOTALL)
        except (_Invalid, re.error):
            continue
        rules.append((compiled, negated, dir_only, anchored))
    return rules


#: Reads the ignore files of one folder ("" is the top): their texts in IGNORE_FILES order.
Reader = Callable[[str], list[str]]


class IgnoreRules:
    """Which paths (relative, `/`-separated) under one top folder are ignored."""

    def __init__(self, read: Reader) -> None:
        self._read = read
        self._rules: dict[str, list[_Rule]] = {}
        self._decided: dict[str, bool] = {}

    @classmethod
    def from_texts(cls, files: dict[str, str]) -> IgnoreRules:
        """Rules from ignore files given as {"sub/dir/.gitignore": text} (the hub's mirror)."""
        by_dir: dict[str, dict[str, str]] = {}
        for path, text in files.items():
            folder, _, name = path.rpartition("/")
            if name in IGNORE_FILES:
                by_dir.setdefault(folder, {})[name] = text

        def read(folder: str) -> list[str]:
            texts = by_dir.get(folder, {})
            return [texts[name] for name in IGNORE_FILES if name in texts]

        return cls(read)

    @classmethod
    def from_folder(cls, folder: Path) -> IgnoreRules:
        """Rules read from the ignore files on disk under `folder` (never through a symlink)."""
        return cls(lambda d: _read_folder(folder, d))

    def _folder_rules(self, folder: str) -> list[_Rule]:
        found = self._rules.get(folder)
        if found is None:
            found = []
            for text in self._read(folder):
                found.extend(parse_patterns(text))
            self._rules[folder] = found
        return found

    def excluded(self, rel: str, is_dir: bool) -> bool:
        """Whether `rel` itself matches, its parent folders taken as not excluded (a walker that
        prunes excluded folders asks only this)."""
        name = rel.rpartition("/")[2]
        if name in ALWAYS_IGNORED:
            return True
        parts = rel.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            folder = "/".join(parts[:depth])
            rules = self._folder_rules(folder)
            if not rules:
                continue
            below = "/".join(parts[depth:])
            for compiled, negated, dir_only, anchored in reversed(rules):
                if dir_only and not is_dir:
                    continue
                if compiled.fullmatch(below if anchored else name):
                    return not negated
        return False

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Whether `rel` is ignored: it matches, or one of its folders does."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            decided = self._decided.get(folder)
            if decided is None:
                decided = self._decided[folder] = self.excluded(folder, True)
            if decided:
                return True
        return self.excluded(rel, is_dir)


def _read_folder(top: Path, folder: str) -> list[str]:
    texts: list[str] = []
    base = top / folder if folder else top
    for name in IGNORE_FILES:
        path = base / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat_module.S_ISREG(st.st_mode) or st.st_size > MAX_IGNORE_FILE_BYTES:
                continue
            texts.append(fh.read(MAX_IGNORE_FILE_BYTES).decode("utf-8", errors="replace"))
    return texts
