"""Shell tokeniser: words (quotes, escapes, expansions) and operators; substitutions recurse."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 16


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
