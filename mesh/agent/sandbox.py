"""Shell-aware command policy: every command a line would start is found and checked.

Pure Python (no Django): the hub calls `check_command` before it sends a task and the agent calls
it again before it runs one. The line is tokenised with shell rules (quotes, escapes, `$'..'`,
operators, redirections, here-documents) and parsed into simple commands, including those inside
subshells, groups, `if`/`while`/`for`/`case`, command and process substitutions (recursively, also
inside double quotes and here-documents), and those started through wrappers such as `sudo`, `env`,
`xargs`, `find -exec` or `bash -c '...'`. Deny wins; anything that cannot be parsed, or whose
command name is only known at run time (`$CMD`, globs), is refused with a reason.

Policy list entries:
- `name` or a glob (`mkfs*`): matches the command's base name (`/sbin/reboot` matches `reboot`);
  in `allowed_commands` a bare name matches only a bare command word (resolved through PATH).
- `/path/to/cmd` (contains `/`): matches the command word exactly (globs allowed).
- `name arg...` (several words): the command and the first arguments, e.g. `systemctl reboot`.
- `@rule`: a built-in check on arguments (see `RULES`), valid in denied and sensitive lists.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RULES",
    "Policy",
    "SandboxParseError",
    "Verdict",
    "check_command",
    "default_policy",
    "parse_commands",
]

MODES = ("permissive", "strict")
MAX_DEPTH = 16
MAX_LENGTH = 100_000

RULES: dict[str, str] = {
    "@root_wipe": "recursive removal of /, a top-level system directory or the home directory",
    "@recursive_perm_root": "recursive chmod/chown/chgrp of / or a top-level system directory",
    "@block_device_write": "writing to a block device (dd of=/dev/sda, > /dev/sda, ...)",
    "@fork_bomb": "a shell function that calls itself (fork bomb)",
    "@pipe_to_shell": "piping into a shell or interpreter (curl ... | sh)",
}


def default_policy() -> dict[str, Any]:
    """The policy a newly registered node gets: permissive, denying what no one wants unasked."""
    return {
        "mode": "permissive",
        "allowed_commands": [],
        "denied_commands": [
            "mkfs",
            "mkfs.*",
            "mke2fs",
            "mkswap",
            "fdisk",
            "sfdisk",
            "cfdisk",
            "gdisk",
            "sgdisk",
            "parted",
            "wipefs",
            "blkdiscard",
            "shutdown",
            "reboot",
            "halt",
            "poweroff",
            "init",
            "telinit",
            "systemctl poweroff",
            "systemctl reboot",
            "systemctl halt",
            "systemctl kexec",
            "@root_wipe",
            "@recursive_perm_root",
            "@block_device_write",
            "@fork_bomb",
        ],
        "sensitive_commands": [
            "rm",
            "rmdir",
            "shred",
            "dd",
            "sudo",
            "su",
            "doas",
            "pkexec",
            "apt",
            "apt-get",
            "aptitude",
            "dpkg",
            "dnf",
            "yum",
            "rpm",
            "zypper",
            "pacman",
            "apk",
            "snap",
            "flatpak",
            "brew",
            "pip",
            "pip3",
            "pip3.*",
            "pipx",
            "npm",
            "pnpm",
            "yarn",
            "gem",
            "cargo install",
            "systemctl",
            "service",
            "kill",
            "pkill",
            "killall",
            "chmod",
            "chown",
            "chgrp",
            "docker",
            "podman",
            "kubectl",
            "crontab",
            "useradd",
            "userdel",
            "usermod",
            "passwd",
            "mount",
            "umount",
            "iptables",
            "ufw",
            "git push",
            "@pipe_to_shell",
        ],
    }


@dataclass(frozen=True)
class Policy:
    """A node's sandbox policy (the shape of `Node.sandbox_policy`)."""

    mode: str = "permissive"
    allowed_commands: tuple[str, ...] = ()
    denied_commands: tuple[str, ...] = ()
    sensitive_commands: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Policy:
        """Validate and build a policy; raises ValueError with a readable message."""
        data = dict(data or {})
        mode = data.get("mode", "permissive")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("allowed_commands", "denied_commands", "sensitive_commands"):
            value = data.get(key) or []
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} must be a list of strings")
            cleaned = tuple(" ".join(v.split()) for v in value if v.strip())
            for entry in cleaned:
                if entry.startswith("@"):
                    if key == "allowed_commands":
                        raise ValueError(f"{key}: rules like {entry!r} can only deny or flag")
                    if entry not in RULES:
                        raise ValueError(f"{key}: unknown rule {entry!r}")
            lists[key] = cleaned
        unknown = set(data) - {"mode", "allowed_commands", "denied_commands", "sensitive_commands"}
        unknown.discard("workspace_root")
        if unknown:
            raise ValueError(f"unknown policy keys: {', '.join(sorted(unknown))}")
        return cls(mode=mode, **lists)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for storage and the wire)."""
        return {
            "mode": self.mode,
            "allowed_commands": list(self.allowed_commands),
            "denied_commands": list(self.denied_commands),
            "sensitive_commands": list(self.sensitive_commands),
        }


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one command line."""

    allowed: bool
    sensitive: bool
    offending: str | None
    reason: str
    commands: list[str] = field(default_factory=list)


class SandboxParseError(ValueError):
    """The line could not be parsed with confidence; callers refuse it."""


# ------------------------------------------------------------------------------------ lexer
_OPS = sorted(
    [
        "&&",
        "||",
        ";;&",
        ";;",
        ";&",
        "|&",
        "&>>",
        "&>",
        ">>",
        "<<<",
        "<<-",
        "<<",
        "<>",
        ">&",
        "<&",
        ">|",
        "|",
        "&",
        ";",
        "(",
        ")",
        "<",
        ">",
    ],
    key=len,
    reverse=True,
)
REDIRECT_OPS = frozenset({"<", ">", ">>", ">|", "<>", "<<", "<<-", "<<<", ">&", "<&", "&>", "&>>"})
_WRITE_REDIRECTS = frozenset({">", ">>", ">|", "<>", "&>", "&>>", ">&"})
_NAME_CHARS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_PARAMS = set("@*#?$!-0123456789")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")


@dataclass
class Word:
    """A shell word: `value` is the text after quote removal (expansions kept verbatim)."""

    value: str
    raw: str
    start: int
    quoted: bool = False
    expands: bool = False  # contains $var, ${..}, $(..), `..`, <(..) or $((..))
    unquoted: str = ""  # the unquoted literal characters (for glob/brace detection)
    subs: list[list[Any]] = field(default_factory=list)  # token lists of command substitutions

    @property
    def dynamic(self) -> bool:
        """True when the shell would compute this word at run time (expansion, glob, braces)."""
        u = self.unquoted
        globbing = "*" in u or "?" in u or re.search(r"\[.*\]", u) is not None
        braces = re.search(r"\{[^{}]*(,|\.\.)[^{}]*\}", u) is not None
        return self.expands or globbing or braces


@dataclass
class Op:
    """An operator token (`;`, `&&`, `|`, `(`, a redirection, a newline...)."""

    op: str
    start: int


class _Lexer:
    """Tokenises shell source; `$(`/`<(` recurse into a nested lexer on the same source."""

    def __init__(self, src: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise SandboxParseError("nesting is too deep")
        self.src = src
        self.depth = depth

    def tokens(self, start: int = 0, *, in_subst: bool = False) -> tuple[list[Any], int]:
        src, n = self.src, len(self.src)
        toks: list[Any] = []
        i = start
        paren = 0
        pending: list[tuple[Word, bool]] = []  # here-documents waiting for their body
        expect_delim: str | None = None
        while i < n:
            c = src[i]
            if c in " \t\r":
                i += 1
                continue
            if c == "\\" and src.startswith("\n", i + 1):
                i += 2
                continue
            if c == "#":
                while i < n and src[i] != "\n":
                    i += 1
                continue
            if c == "\n":
                toks.append(Op("\n", i))
                i += 1
                if pending:
                    i = self._heredoc_bodies(i, pending)
                    pending = []
                continue
            if not (c in "<>" and src.startswith("(", i + 1)):
                op = next((o for o in _OPS if src.startswith(o, i)), None)
                if op is not None:
                    if op == ")":
                        if in_subst and paren == 0:
                            if pending or expect_delim:
                                raise SandboxParseError("here-document inside $( ) has no body")
                            return toks, i + 1
                        paren -= 1
                    elif op == "(":
                        paren += 1
                    toks.append(Op(op, i))
                    if op in ("<<", "<<-"):
                        expect_delim = op
                    i += len(op)
                    continue
            word, i = self._word(i)
            fd_redirect = word.value.isdigit() and not word.quoted and i < n and src[i] in "<>"
            if fd_redirect and not src.startswith("(", i + 1):
                op = next(o for o in _OPS if src.startswith(o, i))
                if op not in REDIRECT_OPS:
                    raise SandboxParseError(f"unexpected {op!r} after a file descriptor")
                toks.append(Op(op, word.start))
                if op in ("<<", "<<-"):
                    expect_delim = op
                i += len(op)
                continue
            if expect_delim is not None:
                if word.expands:
                    raise SandboxParseError("here-document delimiter must be a plain word")
                pending.append((word, expect_delim == "<<-"))
                expect_delim = None
            toks.append(word)
        if in_subst:
            raise SandboxParseError("unterminated command substitution '$('")
        if expect_delim is not None:
            raise SandboxParseError("here-document without a delimiter")
        # A here-document on the last line without a body: bash reads an empty body.
        return toks, i

    def _heredoc_bodies(self, i: int, pending: list[tuple[Word, bool]]) -> int:
        src, n = self.src, len(self.src)
        for delim_word, strip_tabs in pending:
            body: list[str] = []
            while i < n:
                end = src.find("\n", i)
                line = src[i:] if end < 0 else src[i:end]
                i = n if end < 0 else end + 1
                if (line.lstrip("\t") if strip_tabs else line) == delim_word.value:
                    break
                body.append(line)
            if not delim_word.quoted:
                text = "\n".join(body)
                delim_word.subs.extend(_Lexer(text, self.depth + 1).expansions(text))
        return i

    def expansions(self, text: str) -> list[list[Any]]:
        """Command substitutions inside text read like the inside of double quotes."""
        subs: list[list[Any]] = []
        i = 0
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
            elif c == "$":
                i, _ = self._dollar(i, subs, in_dq=True)
            elif c == "`":
                i = self._backtick(i, subs)
            else:
                i += 1
        return subs

    def _word(self, i: int) -> tuple[Word, int]:
        src, n = self.src, len(self.src)
        start = i
        value: list[str] = []
        unquoted: list[str] = []
        word = Word("", "", start)
        while i < n:
            c = src[i]
            if c in " \t\r\n;&|()":
                break
            if c in "<>":
                if not src.startswith("(", i + 1):
                    break
                sub, j = _Lexer(src, self.depth + 1).tokens(i + 2, in_subst=True)
                word.subs.append(sub)
                word.expands = True
                value.append(src[i:j])
                i = j
                continue
            if c == "\\":
                if i + 1 >= n:
                    value.append("\\")
                    i += 1
                elif src[i + 1] == "\n":
                    i += 2
                else:
                    value.append(src[i + 1])
                    word.quoted = True
                    i += 2
                continue
            if c == "'":
                end = src.find("'", i + 1)
                if end < 0:
                    raise SandboxParseError("unterminated single quote")
                value.append(src[i + 1 : end])
                word.quoted = True
                i = end + 1
                continue
            if c == '"':
                i = self._double_quoted(i + 1, value, word)
                word.quoted = True
                continue
            if c == "`":
                j = self._backtick(i, word.subs)
                value.append(src[i:j])
                word.expands = True
                i = j
                continue
            if c == "$":
                if src.startswith("$'", i):
                    text, i = _ansi_c(src, i + 2)
                    value.append(text)
                    word.quoted = True
                    continue
                if src.startswith('$"', i):
                    i = self._double_quoted(i + 2, value, word)
                    word.quoted = True
                    continue
                j, expanded = self._dollar(i, word.subs, in_dq=False)
                value.append(src[i:j])
                word.expands = word.expands or expanded
                if not expanded:
                    unquoted.append("$")
                i = j
                continue
            value.append(c)
            unquoted.append(c)
            i += 1
        word.value = "".join(value)
        word.raw = src[start:i]
        word.unquoted = "".join(unquoted)
        return word, i

    def _double_quoted(self, i: int, value: list[str], word: Word) -> int:
        src, n = self.src, len(self.src)
        while i < n:
            c = src[i]
            if c == '"':
                return i + 1
            if c == "\\" and i + 1 < n and src[i + 1] in '$`"\\\n':
                if src[i + 1] != "\n":
                    value.append(src[i + 1])
                i += 2
                continue
            if c == "`":
                j = self._backtick(i, word.subs)
                value.append(src[i:j])
                word.expands = True
                i = j
                continue
            if c == "$":
                j, expanded = self._dollar(i, word.subs, in_dq=True)
                value.append(src[i:j])
                word.expands = word.expands or expanded
                i = j
                continue
            value.append(c)
            i += 1
        raise SandboxParseError("unterminated double quote")

    def _backtick(self, i: int, subs: list[list[Any]]) -> int:
        src, n = self.src, len(self.src)
        j = i + 1
        inner: list[str] = []
        while j < n:
            c = src[j]
            if c == "\\" and j + 1 < n and src[j + 1] in "`\\$":
                inner.append(src[j + 1])
                j += 2
                continue
            if c == "`":
                text = "".join(inner)
                toks, _ = _Lexer(text, self.depth + 1).tokens(0)
                subs.append(toks)
                return j + 1
            inner.append(c)
            j += 1
        raise SandboxParseError("unterminated backtick command substitution")

    def _dollar(self, i: int, subs: list[list[Any]], *, in_dq: bool) -> tuple[int, bool]:
        """Consume an expansion at `$`; returns (end, whether it expands at run time)."""
        src, n = self.src, len(self.src)
        nxt = src[i + 1] if i + 1 < n else ""
        if src.startswith("$((", i):
            depth, j = 2, i + 3
            while j < n and depth:
                if src[j] == "(":
                    depth += 1
                elif src[j] == ")":
                    depth -= 1
                j += 1
            if depth:
                raise SandboxParseError("unterminated arithmetic expansion '$(('")
            inner = src[i + 3 : j - 2]
            subs.extend(_Lexer(inner, self.depth + 1).expansions(inner))
            return j, True
        if nxt == "(":
            toks, j = _Lexer(src, self.depth + 1).tokens(i + 2, in_subst=True)
            subs.append(toks)
            return j, True
        if nxt == "{":
            depth, j = 1, i + 2
            while j < n and depth:
                c = src[j]
                if c == "\\":
                    j += 2
                    continue
                if c == "$" or c == "`":
                    j = (
                        self._backtick(j, subs)
                        if c == "`"
                        else self._dollar(j, subs, in_dq=True)[0]
                    )
                    continue
                if c == "'" and not in_dq:
                    end = src.find("'", j + 1)
                    if end < 0:
                        raise SandboxParseError("unterminated single quote")
                    j = end + 1
                    continue
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                j += 1
            if depth:
                raise SandboxParseError("unterminated parameter expansion '${'")
            return j, True
        if nxt and nxt in _SPECIAL_PARAMS:
            return i + 2, True
        m = _NAME_CHARS.match(src, i + 1)
        if m:
            return m.end(), True
        return i + 1, False


def _ansi_c(src: str, i: int) -> tuple[str, int]:
    """Decode a `$'...'` string starting after `$'`; returns (text, end)."""
    simple = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
    simple.update({"e": "\x1b", "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"})
    out: list[str] = []
    n = len(src)
    while i < n:
        c = src[i]
        if c == "'":
            return "".join(out), i + 1
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        e = src[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e in "01234567":
            m = re.match(r"[0-7]{1,3}", src[i + 1 :])
            assert m is not None  # noqa: S101  # e is an octal digit
            out.append(chr(int(m.group(), 8)))
            i += 1 + len(m.group())
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            m = re.match(rf"[0-9a-fA-F]{{1,{width}}}", src[i + 2 :])
            if not m:
                out.append("\\" + e)
                i += 2
            else:
                out.append(chr(int(m.group(), 16)))
                i += 2 + len(m.group())
        elif e == "c":
            if i + 2 >= n:
                raise SandboxParseError("unterminated $'...' string")
            out.append(chr(ord(src[i + 2]) & 0x1F))
            i += 3
        else:
            out.append("\\" + e)
            i += 2
    raise SandboxParseError("unterminated $'...' string")


# ----------------------------------------------------------------------------------- parser
@dataclass
class _Invocation:
    """One simple command as written, before wrappers are looked through."""

    argv: list[Word]
    redirects: list[tuple[str, Word]]
    piped_in: bool
    functions: frozenset[str]


_OPENERS = {"{": "brace", "if": "if", "while": "loop", "until": "loop"}
_CLOSERS = {"}": "brace", "fi": "if", "done": "loop", "esac": "case"}
_KEYWORDS = frozenset(
    [
        *_OPENERS,
        *_CLOSERS,
        "then",
        "elif",
        "else",
        "do",
        "for",
        "select",
        "case",
        "in",
        "function",
        "!",
        "time",
        "[[",
        "]]",
        "coproc",
    ]
)


@dataclass
class _Ctx:
    kind: str  # paren, brace, if, loop, case
    function: str | None = None


class _Parser:
    """Finds every simple command in a token list (the grammar is checked loosely)."""

    def __init__(self, toks: list[Any], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise SandboxParseError("nesting is too deep")
        self.toks = toks
        self.depth = depth
        self.pos = 0
        self.stack: list[_Ctx] = []
        self.out: list[_Invocation] = []
        self.pending_function: str | None = None

    # helpers
    def _peek(self, k: int = 0) -> Any:
        j = self.pos + k
        return self.toks[j] if j < len(self.toks) else None

    def _is_word(self, tok: Any, value: str | None = None) -> bool:
        if not isinstance(tok, Word):
            return False
        return value is None or (tok.value == value and not tok.quoted and not tok.expands)

    def _skip_newlines(self) -> None:
        while isinstance(self._peek(), Op) and self._peek().op == "\n":
            self.pos += 1

    def _sub(self, words: Iterable[Word]) -> None:
        for w in words:
            for sub in w.subs:
                self.out.extend(_Parser(sub, self.depth + 1).parse())

    def _push(self, kind: str) -> None:
        self.stack.append(_Ctx(kind, self.pending_function))
        self.pending_function = None

    def _pop(self, kind: str, token: str) -> None:
        if not self.stack or self.stack[-1].kind != kind:
            raise SandboxParseError(f"unexpected {token!r}")
        self.stack.pop()

    def parse(self) -> list[_Invocation]:
        expect_cmd = True  # at a command position
        need_cmd = False  # an operator demands a following command
        piped = False
        while self.pos < len(self.toks):
            tok = self._peek()
            if expect_cmd:
                if isinstance(tok, Op):
                    if tok.op == "\n":
                        self.pos += 1
                        continue
                    if tok.op == "(":
                        nxt = self._peek(1)
                        if isinstance(nxt, Op) and nxt.op == "(" and nxt.start == tok.start + 1:
                            raise SandboxParseError("arithmetic commands '(( ))' are not supported")
                        self._push("paren")
                        self.pos += 1
                        need_cmd = True
                        continue
                    if tok.op == ")" and not need_cmd and self.stack:
                        self._pop("paren", ")")
                        self.pos += 1
                        expect_cmd = False
                        continue
                    if (
                        tok.op in (";;", ";&", ";;&")
                        and self.stack
                        and self.stack[-1].kind == "case"
                    ):
                        self.pos += 1
                        expect_cmd = self._case_patterns()
                        continue
                    if tok.op not in REDIRECT_OPS:
                        raise SandboxParseError(f"unexpected {tok.op!r}")
                elif self._is_word(tok) and not tok.quoted and tok.value in _KEYWORDS:
                    expect_cmd, need_cmd = self._keyword(tok, need_cmd)
                    continue
                if self.pending_function is not None:
                    raise SandboxParseError("a function body must be a { } or ( ) group")
                is_function = self._simple(piped)
                piped = False
                need_cmd = is_function
                expect_cmd = is_function
                continue
            # after a command: separators, closing parenthesis, redirections of a compound
            if isinstance(tok, Word):
                raise SandboxParseError(f"unexpected word {tok.value!r}")
            if tok.op in (";", "&", "\n"):
                expect_cmd = True
            elif tok.op in ("&&", "||", "|", "|&"):
                expect_cmd = need_cmd = True
                piped = tok.op in ("|", "|&")
                self.pos += 1
                self._skip_newlines()
                continue
            elif tok.op == ")":
                self._pop("paren", ")")
            elif tok.op in (";;", ";&", ";;&") and self.stack and self.stack[-1].kind == "case":
                self.pos += 1
                expect_cmd = self._case_patterns()
                continue
            elif tok.op in REDIRECT_OPS:
                target = self._peek(1)
                if not isinstance(target, Word):
                    raise SandboxParseError(f"redirection {tok.op!r} has no target")
                self._sub([target])
                # Redirection of a compound command ({ ...; } > /dev/sda): checked on its own.
                self.out.append(_Invocation([], [(tok.op, target)], False, frozenset()))
                self.pos += 2
                continue
            else:
                raise SandboxParseError(f"unexpected {tok.op!r}")
            self.pos += 1
        if need_cmd:
            raise SandboxParseError("the line ends where a command is expected")
        if self.stack:
            raise SandboxParseError(f"unclosed {self.stack[-1].kind!r} block")
        if self.pending_function is not None:
            raise SandboxParseError("function definition without a body")
        return self.out

    def _keyword(self, tok: Word, need_cmd: bool) -> tuple[bool, bool]:
        """Handle a reserved word at a command position; returns (expect_cmd, need_cmd)."""
        kw = tok.value
        self.pos += 1
        if kw in _OPENERS:
            self._push(_OPENERS[kw])
            return True, True
        if kw in ("}", "fi", "done", "esac"):
            if need_cmd and kw != "esac":
                raise SandboxParseError(f"unexpected {kw!r}")
            self._pop(_CLOSERS[kw], kw)
            return False, False
        if kw in ("then", "elif", "else"):
            if not self.stack or self.stack[-1].kind != "if":
                raise SandboxParseError(f"unexpected {kw!r}")
            return True, True
        if kw == "do":
            if not self.stack or self.stack[-1].kind != "loop":
                raise SandboxParseError("unexpected 'do'")
            return True, True
        if kw in ("!", "time"):
            if kw == "time" and self._is_word(self._peek(), "-p"):
                self.pos += 1
            return True, True
        if kw in ("for", "select"):
            self._for_header(kw)
            return True, True
        if kw == "case":
            subject = self._peek()
            if not isinstance(subject, Word):
                raise SandboxParseError("'case' needs a word")
            self._sub([subject])
            self.pos += 1
            self._skip_newlines()
            if not self._is_word(self._peek(), "in"):
                raise SandboxParseError("'case' needs 'in'")
            self.pos += 1
            self._push("case")
            return self._case_patterns(), False
        if kw == "function":
            name = self._peek()
            if not isinstance(name, Word) or name.dynamic:
                raise SandboxParseError("'function' needs a name")
            self.pos += 1
            if isinstance(self._peek(), Op) and self._peek().op == "(":
                if not (isinstance(self._peek(1), Op) and self._peek(1).op == ")"):
                    raise SandboxParseError("bad function definition")
                self.pos += 2
            self._skip_newlines()
            self.pending_function = name.value
            return True, True
        if kw == "[[":
            words: list[Word] = []
            while True:
                t = self._peek()
                if t is None:
                    raise SandboxParseError("'[[' without ']]'")
                self.pos += 1
                if self._is_word(t, "]]"):
                    break
                if isinstance(t, Word):
                    words.append(t)
            self._sub(words)
            return False, False
        raise SandboxParseError(f"{kw!r} is not supported here")

    def _for_header(self, kw: str) -> None:
        name = self._peek()
        if not isinstance(name, Word):
            raise SandboxParseError(f"'{kw}' needs a name (C-style loops are not supported)")
        self.pos += 1
        self._skip_newlines()
        if self._is_word(self._peek(), "in"):
            self.pos += 1
            words: list[Word] = []
            while isinstance(self._peek(), Word):
                words.append(self._peek())
                self.pos += 1
            self._sub(words)
        tok = self._peek()
        if isinstance(tok, Op) and tok.op in (";", "\n"):
            self.pos += 1
        self._skip_newlines()
        if not self._is_word(self._peek(), "do"):
            raise SandboxParseError(f"'{kw}' needs 'do'")
        self.pos += 1
        self._push("loop")

    def _case_patterns(self) -> bool:
        """Read `pattern | pattern )` or `esac`; returns whether a command position follows."""
        self._skip_newlines()
        if self._is_word(self._peek(), "esac"):
            self.pos += 1
            self._pop("case", "esac")
            return False
        if isinstance(self._peek(), Op) and self._peek().op == "(":
            self.pos += 1
        words: list[Word] = []
        while True:
            tok = self._peek()
            if isinstance(tok, Word):
                words.append(tok)
            elif not (isinstance(tok, Op) and tok.op == "|"):
                break
            self.pos += 1
        tok = self._peek()
        if not words or not (isinstance(tok, Op) and tok.op == ")"):
            raise SandboxParseError("malformed 'case' pattern")
        self.pos += 1
        self._sub(words)
        return True

    def _simple(self, piped: bool) -> bool:
        """Read one simple command; returns True when it was `name()` (a function header)."""
        argv: list[Word] = []
        assigns: list[Word] = []
        redirects: list[tuple[str, Word]] = []
        while self.pos < len(self.toks):
            tok = self._peek()
            if isinstance(tok, Op):
                if tok.op in REDIRECT_OPS:
                    target = self._peek(1)
                    if not isinstance(target, Word):
                        raise SandboxParseError(f"redirection {tok.op!r} has no target")
                    redirects.append((tok.op, target))
                    self.pos += 2
                    continue
                if tok.op == "(" and len(argv) == 1 and not assigns and not redirects:
                    nxt = self._peek(1)
                    if not (isinstance(nxt, Op) and nxt.op == ")") or argv[0].dynamic:
                        raise SandboxParseError(f"unexpected '(' after {argv[0].value!r}")
                    self.pos += 2
                    self._skip_newlines()
                    self.pending_function = argv[0].value
                    return True
                break
            if not argv and _ASSIGNMENT.match(tok.raw):
                assigns.append(tok)
            else:
                argv.append(tok)
            self.pos += 1
        self._sub([*assigns, *argv, *(t for _, t in redirects)])
        functions = frozenset(c.function for c in self.stack if c.function)
        self.out.append(_Invocation(argv, redirects, piped, functions))
        return False


def _tokenize(src: str, depth: int) -> list[Any]:
    toks, _ = _Lexer(src, depth).tokens(0)
    return toks


# ------------------------------------------------------------------------- wrappers, commands
@dataclass
class _Command:
    """A command the line would start, after looking through wrappers."""

    name: str
    args: list[str]
    dynamic: bool = False
    redirects: list[tuple[str, str]] = field(default_factory=list)
    findings: list[tuple[str, str]] = field(default_factory=list)  # (rule, detail)

    @property
    def base(self) -> str:
        return self.name.rstrip("/").rsplit("/", 1)[-1] or self.name


# base name -> (options taking a value, positional words before the command, accepts NAME=val)
_WRAPPERS: dict[str, tuple[frozenset[str], int, bool]] = {
    "sudo": (
        frozenset(
            [
                "-u",
                "-g",
                "-C",
                "-D",
                "-h",
                "-p",
                "-r",
                "-t",
                "-T",
                "-U",
                "--user",
                "--group",
                "--chdir",
                "--prompt",
                "--host",
            ]
        ),
        0,
        True,
    ),
    "doas": (frozenset({"-u", "-C"}), 0, False),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir"}), 0, True),
    "nice": (frozenset({"-n", "--adjustment"}), 0, False),
    "ionice": (frozenset({"-c", "-n", "--class", "--classdata"}), 0, False),
    "nohup": (frozenset(), 0, False),
    "setsid": (frozenset(), 0, False),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0, False),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1, False),
    "chroot": (frozenset({"--userspec", "--groups"}), 1, False),
    "xargs": (
        frozenset(
            [
                "-a",
                "-d",
                "-E",
                "-I",
                "-L",
                "-n",
                "-P",
                "-s",
                "--arg-file",
                "--delimiter",
                "--max-args",
                "--max-procs",
            ]
            + ["--max-lines", "--max-chars", "--process-slot-var"]
        ),
        0,
        False,
    ),
    "time": (frozenset({"-o", "-f", "--output", "--format"}), 0, False),
    "strace": (frozenset({"-o", "-e", "-p", "-s", "-u", "-E", "-P", "-a", "-b", "-I"}), 0, False),
    "ltrace": (frozenset({"-o", "-e", "-p", "-s", "-u", "-n", "-a"}), 0, False),
    "taskset": (frozenset(), 1, False),
    "unbuffer": (frozenset(), 0, False),
    "busybox": (frozenset(), 0, False),
    "caffeinate": (frozenset({"-t", "-w"}), 0, False),
    "flatpak-spawn": (frozenset(), 0, False),
    "runuser": (frozenset({"-u", "-g", "-G", "--user", "--group"}), 0, False),
}
# Shell builtins that simply run the next word as the command (not commands themselves).
_TRANSPARENT: dict[str, frozenset[str]] = {
    "exec": frozenset({"-a"}),
    "command": frozenset(),
    "builtin": frozenset(),
}
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh"})
_INTERPRETERS = re.compile(r"(python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|php[0-9.]*|lua.*)")


def _skip_options(
    words: list[Word], with_value: frozenset[str], positional: int, env_assign: bool
) -> tuple[list[Word], Word | None]:
    """Drop a wrapper's options; returns (rest, a dynamic word that hides the command)."""
    i = 0
    while i < len(words):
        w = words[i]
        if w.dynamic:
            return [], w
        v = w.value
        if v == "--":
            i += 1
            break
        if v.startswith("-") and len(v) > 1:
            i += 2 if v in with_value else 1
            continue
        if env_assign and _ASSIGNMENT.match(v):
            i += 1
            continue
        break
    rest = words[i:]
    for _ in range(positional):
        if rest and rest[0].dynamic:
            return [], rest[0]
        rest = rest[1:]
    return rest, None


def _dynamic_command(word: Word) -> _Command:
    return _Command(name=word.raw, args=[], dynamic=True)


class _Analyzer:
    """Turns parsed invocations into the commands they start (wrappers looked through)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def source(self, src: str) -> list[_Command]:
        if len(src) > MAX_LENGTH:
            raise SandboxParseError("the command is too long to check")
        if "\x00" in src:
            raise SandboxParseError("the command contains a NUL byte")
        invocations = _Parser(_tokenize(src, self.depth), self.depth).parse()
        commands: list[_Command] = []
        for inv in invocations:
            commands.extend(self.invocation(inv))
        return commands

    def invocation(self, inv: _Invocation) -> list[_Command]:
        redirects = [(op, t.value) for op, t in inv.redirects]
        if not inv.argv:
            return [_Command(name="", args=[], redirects=redirects)] if redirects else []
        cmds = self.unwrap(inv.argv)
        if cmds:
            cmds[-1].redirects = redirects
            first = cmds[0]
            if first.base in inv.functions:
                first.findings.append(("@fork_bomb", f"function {first.base!r} calls itself"))
            if inv.piped_in and any(f[0] == "stdin" for c in cmds for f in c.findings):
                cmds[0].findings.append(("@pipe_to_shell", "a pipe feeds a shell or interpreter"))
        for c in cmds:
            c.findings = [f for f in c.findings if f[0] != "stdin"]
        return cmds

    def nested(self, text: str) -> list[_Command]:
        return _Analyzer(self.depth + 1).source(text)

    def unwrap(self, words: list[Word]) -> list[_Command]:
        out: list[_Command] = []
        hops = 0
        while words:
            hops += 1
            if hops > MAX_DEPTH:
                raise SandboxParseError("too many nested wrappers")
            head = words[0]
            if head.dynamic:
                out.append(_dynamic_command(head))
                return out
            cmd = _Command(name=head.value, args=[w.value for w in words[1:]])
            base = cmd.base
            if base in _TRANSPARENT and cmd.name == base:
                words, hidden = _skip_options(words[1:], _TRANSPARENT[base], 0, False)
                if hidden is not None:
                    out.append(_dynamic_command(hidden))
                continue
            out.append(cmd)
            rest = words[1:]
            if base in SHELLS:
                out.extend(self._shell(cmd, rest))
                return out
            if _INTERPRETERS.fullmatch(base):
                if all(w.value.startswith("-") and w.value not in ("-c", "-e") for w in rest):
                    cmd.findings.append(("stdin", ""))
                return out
            if base == "eval":
                if any(w.dynamic for w in rest):
                    out.append(_dynamic_command(next(w for w in rest if w.dynamic)))
                else:
                    out.extend(self.nested(" ".join(w.value for w in rest)))
                return out
            if base == "find":
                out.extend(self._find(rest))
                return out
            if base == "su":
                out.extend(self._option_script(rest, {"-c", "--command"}))
                return out
            if base == "watch":
                rest, hidden = _skip_options(
                    rest, frozenset({"-n", "--interval", "-d", "--differences"}), 0, False
                )
                if hidden is not None:
                    out.append(_dynamic_command(hidden))
                elif rest:
                    out.extend(self._joined(rest))
                return out
            if base == "env" and any(w.value in ("-S", "--split-string") for w in rest):
                idx = next(i for i, w in enumerate(rest) if w.value in ("-S", "--split-string"))
                out.extend(self._joined(rest[idx + 1 :]))
                return out
            spec = _WRAPPERS.get(base)
            if spec is None:
                return out
            words, hidden = _skip_options(rest, *spec)
            if hidden is not None:
                out.append(_dynamic_command(hidden))
                return out
        return out

    def _joined(self, words: list[Word]) -> list[_Command]:
        hidden = next((w for w in words if w.dynamic), None)
        if hidden is not None:
            return [_dynamic_command(hidden)]
        return self.nested(" ".join(w.value for w in words))

    def _shell(self, cmd: _Command, rest: list[Word]) -> list[_Command]:
        """`bash [-opts] -c 'script'`: check the script; a bare shell reads stdin."""
        with_c = False
        i = 0
        while i < len(rest):
            v = rest[i].value
            if rest[i].raw.startswith("<("):
                break  # `bash <(curl ...)`: a script fed from a process substitution
            if rest[i].dynamic:
                return [_dynamic_command(rest[i])]
            if v == "--":
                i += 1
                break
            if v in ("-o", "+o", "--rcfile", "--init-file", "-O", "+O"):
                i += 2
                continue
            if v.startswith("--"):
                i += 1
                continue
            if len(v) > 1 and v[0] in "-+":
                with_c = with_c or (v[0] == "-" and "c" in v[1:])
                if v[0] == "-" and "s" in v[1:]:
                    cmd.findings.append(("stdin", ""))
                i += 1
                continue
            break
        operands = rest[i:]
        if with_c:
            if not operands:
                raise SandboxParseError(f"{cmd.name} -c without a command")
            if operands[0].dynamic:
                return [_dynamic_command(operands[0])]
            return self.nested(operands[0].value)
        if not operands:
            cmd.findings.append(("stdin", ""))
        elif operands[0].raw.startswith("<("):
            cmd.findings.append(("@pipe_to_shell", "a process substitution feeds a shell"))
        return []

    def _option_script(self, rest: list[Word], flags: set[str]) -> list[_Command]:
        for i, w in enumerate(rest):
            if w.value in flags and i + 1 < len(rest):
                script = rest[i + 1]
                return [_dynamic_command(script)] if script.dynamic else self.nested(script.value)
            for flag in flags:
                if flag.startswith("--") and w.value.startswith(flag + "="):
                    if w.dynamic:
                        return [_dynamic_command(w)]
                    return self.nested(w.value.split("=", 1)[1])
        return []

    def _find(self, rest: list[Word]) -> list[_Command]:
        out: list[_Command] = []
        i = 0
        while i < len(rest):
            if rest[i].value in ("-exec", "-execdir", "-ok", "-okdir") and not rest[i].expands:
                j = i + 1
                while j < len(rest) and rest[j].value not in (";", "+"):
                    j += 1
                out.extend(self.unwrap(rest[i + 1 : j]))
                i = j
            i += 1
        return out


# ---------------------------------------------------------------------------- rules, policy
_SYSTEM_DIRS = frozenset(
    [
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/usr",
        "/var",
        "/System",
        "/Library",
        "/Users",
        "/Applications",
        "/private",
    ]
)
_HOME_FORMS = frozenset({"~", "$HOME", "${HOME}"})
_BLOCK_DEVICE = re.compile(
    r"/dev/(sd[a-z]+\d*|hd[a-z]+\d*|vd[a-z]+\d*|xvd[a-z]+\d*|nvme\d+n\d+(p\d+)?|mmcblk\d+(p\d+)?"
    r"|md\d+|dm-\d+|loop\d+|sr\d+|disk\d+(s\d+)?|rdisk\d+(s\d+)?|disk/.+|mapper/.+)"
)


def _critical_path(value: str) -> bool:
    v = re.sub(r"/{2,}", "/", value.strip())
    for suffix in ("/*", "/.", "/"):
        while len(v) > 1 and v.endswith(suffix):
            v = v[: -len(suffix)] or "/"
    return v in ("/", "/*", "/.", "/..") or v in _SYSTEM_DIRS or v in _HOME_FORMS


def _recursive(args: list[str]) -> bool:
    return any(
        a in ("--recursive", "-R", "-r")
        or (a.startswith("-") and not a.startswith("--") and ("r" in a or "R" in a))
        for a in args
    )


def _rule_findings(cmd: _Command) -> list[tuple[str, str]]:
    found = list(cmd.findings)
    base, args = cmd.base, cmd.args
    operands = [a for a in args if not a.startswith("-")]
    wipe = "--no-preserve-root" in args or any(_critical_path(a) for a in operands)
    if base == "rm" and _recursive(args) and wipe:
        found.append(("@root_wipe", "recursive removal of a critical path"))
    perm_root = any(_critical_path(a) for a in operands[1:])
    if base in ("chmod", "chown", "chgrp") and _recursive(args) and perm_root:
        found.append(("@recursive_perm_root", f"recursive {base} of a critical path"))
    targets = [t for op, t in cmd.redirects if op in _WRITE_REDIRECTS]
    if base == "dd":
        targets += [a[3:] for a in args if a.startswith("of=")]
    if base in ("tee", "shred", "cp", "cat", "pv", "badblocks"):
        targets += operands[-1:] if base == "cp" else operands
    if any(_BLOCK_DEVICE.fullmatch(t) for t in targets):
        found.append(("@block_device_write", "writes to a block device"))
    return found


def _matches(entry: str, cmd: _Command, *, allow_list: bool) -> bool:
    """Whether a policy list entry matches this command."""
    if entry.startswith("@"):
        return False
    parts = entry.split()
    pattern, prefix = parts[0], parts[1:]
    if "/" in pattern:
        hit = fnmatch.fnmatchcase(cmd.name, pattern)
    elif allow_list and "/" in cmd.name:
        hit = False
    else:
        hit = fnmatch.fnmatchcase(cmd.base, pattern)
    if not hit or len(cmd.args) < len(prefix):
        return False
    return all(fnmatch.fnmatchcase(a, p) for a, p in zip(cmd.args, prefix, strict=False))


def _first_match(entries: Iterable[str], cmd: _Command, *, allow_list: bool = False) -> str | None:
    return next((e for e in entries if _matches(e, cmd, allow_list=allow_list)), None)


def parse_commands(command: str) -> list[str]:
    """The command names a line would start (wrappers looked through); raises SandboxParseError."""
    return [c.name for c in _Analyzer(0).source(command) if c.name]


def check_command(policy: Policy, command: str) -> Verdict:
    """Check every command a shell line would start against the policy; deny wins."""
    if not isinstance(command, str) or not command.strip():
        return Verdict(False, False, None, "The command is empty.", [])
    try:
        cmds = [c for c in _Analyzer(0).source(command) if c.name or c.redirects]
    except SandboxParseError as exc:
        return Verdict(False, False, None, f"The command could not be parsed safely: {exc}.", [])
    except RecursionError:
        return Verdict(False, False, None, "The command is nested too deeply to check.", [])
    names = [c.name for c in cmds if c.name]
    if not names:
        return Verdict(False, False, None, "The line starts no command.", names)
    denied, sensitive = policy.denied_commands, policy.sensitive_commands
    for c in cmds:
        if c.dynamic:
            continue
        findings = _rule_findings(c)
        for rule, detail in findings:
            if rule in denied:
                label = c.name or "a redirection"
                return Verdict(
                    False,
                    False,
                    label,
                    f"'{label}' is not allowed: {detail} (rule {rule}).",
                    names,
                )
        entry = _first_match(denied, c) if c.name else None
        if entry is not None:
            return Verdict(
                False, False, c.name, f"'{c.name}' is denied by the node's policy ({entry}).", names
            )
    for c in cmds:
        if c.dynamic:
            return Verdict(
                False,
                False,
                c.name,
                f"'{c.name}' is computed when the command runs, so it cannot be checked.",
                names,
            )
    if policy.mode == "strict":
        for c in cmds:
            if c.name and _first_match(policy.allowed_commands, c, allow_list=True) is None:
                return Verdict(
                    False,
                    False,
                    c.name,
                    f"'{c.name}' is not in the node's allowed commands (strict mode).",
                    names,
                )
    for c in cmds:
        rules = [rule for rule, _ in _rule_findings(c) if rule in sensitive]
        entry = rules[0] if rules else (_first_match(sensitive, c) if c.name else None)
        if entry is not None:
            return Verdict(
                True, True, c.name, f"'{c.name}' needs approval ({entry} is sensitive).", names
            )
    return Verdict(True, False, None, "Allowed.", names)
