"""The built-in argument rules (`@root_wipe`...) and the redirection checks.

Paths are judged on their literal text: `..` is normalised (an absolute path with `..` is
refused, since a symlink may sit under it), globs at the top level or matching a system directory,
braces (expanded), `~`, `~user` and computed operands are refused when they cannot be proven
harmless.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from .commands import _Command
from .lexer import _WRITE_REDIRECTS, HEREDOC_OPS, Word
from .wrappers import INERT

SYSTEM_DIRS = frozenset(
    ["/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt"]
    + ["/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/snap", "/mnt"]
    + ["/media", "/System", "/Library", "/Users", "/Applications", "/private", "/Volumes"]
)
_HOMES = ("/home", "/Users")
_CORE = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/System")
_BLOCK_DEVICE = re.compile(
    r"/dev/(sd[a-z]+\d*|hd[a-z]+\d*|vd[a-z]+\d*|xvd[a-z]+\d*|nvme\d+n\d+(p\d+)?|mmcblk\d+(p\d+)?"
    r"|md\d+|dm-\d+|loop\d+|sr\d+|disk\d+(s\d+)?|rdisk\d+(s\d+)?|disk/.+|mapper/.+)"
)
NETWORK = re.compile(r"/dev/(tcp|udp)(/|$)")
SPECIAL_FILES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/stdin"})
DIR_CHANGERS = frozenset({"cd", "pushd", "popd"})
_GLOB = re.compile(r"[*?\[]")


# ----------------------------------------------------------------------------- paths
def _system(component: str) -> bool:
    """Whether `/component` is (or, as a glob, may match) a top-level system directory."""
    if _GLOB.search(component):
        return True
    return "/" + component in SYSTEM_DIRS


def critical_path(path: str, *, moved: bool = False) -> bool:
    """Whether a literal operand could name /, a top-level system directory or a home."""
    v = re.sub(r"/{2,}", "/", path)
    if not v:
        return False
    if v.startswith("~"):
        _, _, tail = v.partition("/")
        norm = posixpath.normpath(tail) if tail else "."
        return norm == "." or norm.startswith("..") or bool(_GLOB.search(norm.split("/")[0]))
    if v.startswith("/"):
        parts = [p for p in v.split("/") if p not in ("", ".")]
        if ".." in parts:
            return True
        if not parts or (len(parts) == 1 and _system(parts[0])) or _GLOB.search(parts[0]):
            return True
        if "/" + parts[0] in _HOMES + _CORE and len(parts) == 2:
            return True  # a home, or a direct child of the system's own code (/usr/lib)
        return len(parts) == 2 and "/" + parts[0] in SYSTEM_DIRS and bool(_GLOB.search(parts[1]))
    parts = posixpath.normpath(v).split("/")
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    if ups:
        rest = [p for p in parts[ups:] if p != "."]
        return not rest or _system(rest[0])
    return moved and (parts[0] == "." or _system(parts[0]))


def expand_braces(text: str) -> list[str]:
    """Bash brace expansion of a literal (`/{usr,etc}` -> `/usr`, `/etc`; `{a..c}`)."""
    m = re.search(r"\{([^{}]*)\}", text)
    if m is None:
        return [text]
    head, tail, body = text[: m.start()], text[m.end() :], m.group(1)
    seq = re.fullmatch(r"(-?\w+)\.\.(-?\w+)(?:\.\.-?\d+)?", body)
    if "," in body:
        items = body.split(",")
    elif seq and seq.group(1).lstrip("-").isdigit() and seq.group(2).lstrip("-").isdigit():
        a, b = int(seq.group(1)), int(seq.group(2))
        step = 1 if b >= a else -1
        items = [str(x) for x in range(a, b + step, step)][:1000]
    elif seq and len(seq.group(1)) == 1 and len(seq.group(2)) == 1:
        a, b = ord(seq.group(1)), ord(seq.group(2))
        step = 1 if b >= a else -1
        items = [chr(x) for x in range(a, b + step, step)]
    else:
        return [head + "{" + body + "}" + t for t in expand_braces(tail)]
    return [e for item in items for e in expand_braces(head + item + tail)][:4096]


def _operands(words: list[Word]) -> tuple[list[str], list[str], list[Word]]:
    """(options, literal operands with braces expanded, computed words) of a command."""
    options: list[str] = []
    operands: list[str] = []
    dynamic: list[Word] = []
    after_dashes = False
    for w in words:
        plain_braces = w.braces and not w.expands and not w.quoted and not w.globs
        # A glob is judged on its literal text: `build/*` stays inside build/, `/e*` may be /etc.
        plain_glob = w.globs and not w.expands and not w.braces
        if w.dynamic and not plain_braces and not plain_glob:
            dynamic.append(w)
            continue
        for v in expand_braces(w.value) if plain_braces else [w.value]:
            if v == "--" and not after_dashes:
                after_dashes = True
            elif v.startswith("-") and len(v) > 1 and not after_dashes:
                options.append(v)
            else:
                operands.append(v)
    return options, operands, dynamic


def _recursive(options: list[str]) -> bool:
    return any(
        a in ("--recursive", "-R", "-r")
        or (a.startswith("-") and not a.startswith("--") and ("r" in a or "R" in a))
        for a in options
    )


def _unprovable(
    options: list[str], targets: list[str], dynamic: list[Word], appended: bool, moved: bool
) -> bool:
    """A recursive operation whose targets cannot be proven harmless."""
    recursive = _recursive(options)
    critical = any(critical_path(t, moved=moved) for t in targets)
    unknown = bool(dynamic) or appended
    if recursive and (critical or unknown):
        return True
    if critical and unknown:
        return True  # a computed word may be the -r
    return len(dynamic) > 1 or any(w.splits for w in dynamic)


def rule_findings(cmd: _Command, *, moved: bool = False) -> list[tuple[str, str]]:
    """The built-in rules this command trips (deny or flag, as the policy lists them)."""
    found = list(cmd.findings)
    base = cmd.base
    options, operands, dynamic = _operands(cmd.words)
    if base == "rm" and (
        "--no-preserve-root" in options
        or _unprovable(options, operands, dynamic, cmd.appended, moved)
    ):
        found.append(("@root_wipe", "recursive removal of a critical path"))
    if base == "find" and "-delete" in cmd.args:
        starts = _find_starts(cmd.words)
        if starts is None or any(critical_path(s, moved=moved) for s in starts):
            found.append(("@root_wipe", "find -delete under a critical path"))
    if base in ("chmod", "chown", "chgrp"):
        targets = operands if any(o.startswith("--reference") for o in options) else operands[1:]
        if _unprovable(options, targets, dynamic, cmd.appended, moved) and _recursive(
            options + (["-R"] if dynamic or cmd.appended else [])
        ):
            found.append(("@recursive_perm_root", f"recursive {base} of a critical path"))
    targets = [t.value for op, t in cmd.redirects if op in _WRITE_REDIRECTS]
    if base == "dd":
        targets += [a[3:] for a in cmd.args if a.startswith("of=")]
    if base in ("tee", "shred", "cp", "cat", "pv", "badblocks"):
        targets += operands[-1:] if base == "cp" else operands
    if any(_BLOCK_DEVICE.fullmatch(t) for t in targets):
        found.append(("@block_device_write", "writes to a block device"))
    return found


def _find_starts(words: list[Word]) -> list[str] | None:
    """The starting points of `find` (before its first expression word); None if computed."""
    starts: list[str] = []
    for w in words:
        if w.value.startswith(("-", "(", "!")) and not w.dynamic:
            if (
                w.value in ("-H", "-L", "-P")
                or w.value.startswith("-O")
                or w.value.startswith("-D")
            ):
                continue
            break
        if w.dynamic and not (w.globs and not w.expands and not w.braces):
            return None
        starts.append(w.value)
    return starts or ["."]


# ----------------------------------------------------------------------------- redirections
def _file_target(op: str, target: Word) -> bool:
    if op in HEREDOC_OPS:
        return False
    return not (
        op in (">&", "<&") and not target.dynamic and re.fullmatch(r"\d+-?|-", target.value)
    )


def network_refusal(cmds: list[_Command]) -> str | None:
    """Every mode: a redirection that may open /dev/tcp or /dev/udp."""
    for c in cmds:
        for op, t in c.redirects:
            if not _file_target(op, t):
                continue
            if NETWORK.search(t.value):
                return f"the redirection to {t.value!r} opens a network connection"
            if t.dynamic:
                p = t.literal_prefix
                if not p or (
                    p.startswith("/")
                    and ("/dev/tcp/".startswith(p) or "/dev/udp/".startswith(p) or NETWORK.match(p))
                ):
                    return f"the redirection target {t.raw!r} is computed when the command runs"
    return None


def _inside(workspace: Path, cwd: Path | None, value: str) -> bool:
    root = os.path.realpath(workspace)
    real = os.path.realpath(os.path.join(cwd or root, value))
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def strict_redirect_note(
    cmds: list[_Command], workspace: Path | None, cwd: Path | None
) -> str | None:
    """Strict mode: reads and writes through redirections stay inside the workspace."""
    owners: list[_Command] = []
    for c in cmds:
        for op, t in c.redirects:
            if not _file_target(op, t):
                continue
            if t.dynamic or t.tilde:
                return f"the redirection target {t.raw!r} is computed when the command runs"
            if t.value in SPECIAL_FILES:
                continue
            owners.append(c)
            if workspace is None:
                norm = posixpath.normpath(t.value)
                if t.value.startswith("/") or norm == ".." or norm.startswith("../"):
                    return f"the redirection to {t.value!r} leaves the workspace"
            elif not _inside(workspace, cwd, t.value):
                return f"the redirection to {t.value!r} leaves the workspace"
    if owners:
        others = [c for c in cmds if c.name and not any(c is o for o in owners)]
        movers = [c.name for c in others if c.base not in INERT or c.dynamic]
        movers += [c.name for c in owners if c.base in DIR_CHANGERS]
        if movers:
            return (
                f"a file redirection in a line that also runs {movers[0]!r} "
                "(it may move the target out of the workspace)"
            )
    return None


def moves_directory(cmds: list[_Command]) -> bool:
    """Whether the line changes directory (relative paths then mean something else)."""
    return any(c.base in DIR_CHANGERS for c in cmds)
