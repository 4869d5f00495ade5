"""Shell tokeniser: words (quotes, escapes, expansions) and operators; substitutions recurse.

Blanks and metacharacters are exactly bash's: space and tab separate words; `| & ; ( ) < >` and
newline are operators; every other byte (`\\r`, vertical tab, non-breaking space...) belongs to a
word. `#` starts a comment only at the start of a word.

Constructs strict mode does not positively understand are recorded in `notes` (a list shared by
every lexer, parser and analyzer working on one line); strict mode refuses a line with any note.
"""

from __future__ import annotations

import re
from typing import Any

from .ansi import _ansi_c
from .tokens import (
    _ASSIGNMENT,
    _FD_VAR,
    _NAME_CHARS,
    _NETWORK,
    _OPS,
    _SAFE_ARITH,
    _SAFE_PARAM,
    _SPECIAL_PARAMS,
    _WORD_END,
    _WRITE_REDIRECTS,
    BLANKS,
    HEREDOC_OPS,
    MAX_DEPTH,
    NETWORK_NOTE,
    REDIRECT_OPS,
    Op,
    SandboxParseError,
    Word,
)

__all__ = [
    "_ASSIGNMENT",
    "_WRITE_REDIRECTS",
    "HEREDOC_OPS",
    "MAX_DEPTH",
    "NETWORK_NOTE",
    "REDIRECT_OPS",
    "Op",
    "SandboxParseError",
    "Word",
    "_Lexer",
]


class _Lexer:
    """Tokenises shell source; `$(`/`<(` recurse into a nested lexer on the same source."""

    def __init__(self, src: str, depth: int, notes: list[str] | None = None) -> None:
        if depth > MAX_DEPTH:
            raise SandboxParseError("nesting is too deep")
        self.src = src
        self.depth = depth
        self.notes: list[str] = [] if notes is None else notes

    def _nested(self, src: str) -> _Lexer:
        return _Lexer(src, self.depth + 1, self.notes)

    def note(self, reason: str) -> None:
        if reason not in self.notes:
            self.notes.append(reason)

    def tokens(self, start: int = 0, *, in_subst: bool = False) -> tuple[list[Any], int]:
        src, n = self.src, len(self.src)
        toks: list[Any] = []
        i = start
        paren = 0
        pending: list[tuple[Word, bool]] = []  # here-documents waiting for their body
        expect_delim: str | None = None
        while i < n:
            c = src[i]
            if c in BLANKS:
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
            fd_redirect = not word.quoted and i < n and src[i] in "<>"
            fd_var = fd_redirect and _FD_VAR.fullmatch(word.raw) is not None
            if (word.value.isdigit() or fd_var) and fd_redirect and not src.startswith("(", i + 1):
                op = next(o for o in _OPS if src.startswith(o, i))
                if op not in REDIRECT_OPS:
                    raise SandboxParseError(f"unexpected {op!r} after a file descriptor")
                note = f"the redirection {word.raw}{op} assigns a variable" if fd_var else ""
                toks.append(Op(op, word.start, note))
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
        for delim_word, _ in pending:  # a here-document on the last line: bash reads no body
            delim_word.body = ""
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
                body.append(line.lstrip("\t") if strip_tabs else line)
            text = "\n".join(body) + ("\n" if body else "")
            delim_word.body = text
            if not delim_word.quoted:
                sink = self.expansions(text)
                delim_word.subs.extend(sink.subs)
                delim_word.body_literal = not sink.expands
        return i

    def expansions(self, text: str) -> Word:
        """Expansions inside text read like the inside of double quotes (subs and notes)."""
        sink = Word("", text, 0)
        inner = self._nested(text) if text is not self.src else self
        i = 0
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
            elif c == "$":
                i, expanded = inner._dollar(i, sink, in_dq=True)
                sink.expands = sink.expands or expanded
            elif c == "`":
                i = inner._backtick(i, sink)
                sink.expands = True
            else:
                i += 1
        return sink

    def _word(self, i: int) -> tuple[Word, int]:
        src, n = self.src, len(self.src)
        start = i
        value: list[str] = []
        unquoted: list[str] = []
        word = Word("", "", start)

        def expansion_starts() -> None:
            if word.prefix is None:
                word.prefix = "".join(value)

        while i < n:
            c = src[i]
            if c in _WORD_END:
                break
            if c in "<>":
                if not src.startswith("(", i + 1):
                    break
                sub, j = self._nested(src).tokens(i + 2, in_subst=True)
                word.subs.append(sub)
                expansion_starts()
                word.expands = word.splits = True
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
                i = self._double_quoted(i + 1, value, word, expansion_starts)
                word.quoted = True
                continue
            if c == "`":
                expansion_starts()
                j = self._backtick(i, word)
                value.append(src[i:j])
                word.expands = word.splits = True
                i = j
                continue
            if c == "$":
                if src.startswith("$'", i):
                    text, i = _ansi_c(src, i + 2)
                    value.append(text)
                    word.quoted = True
                    continue
                if src.startswith('$"', i):
                    self.note('the $"..." (translated string) form')
                    i = self._double_quoted(i + 2, value, word, expansion_starts)
                    word.quoted = True
                    continue
                j, expanded = self._dollar(i, word, in_dq=False)
                if expanded:
                    expansion_starts()
                    word.splits = True
                value.append(src[i:j])
                word.expands = word.expands or expanded
                if not expanded:
                    unquoted.append("$")
                i = j
                continue
            if c == "~":
                word.tilde = True
            value.append(c)
            unquoted.append(c)
            i += 1
        word.value = "".join(value)
        word.raw = src[start:i]
        word.unquoted = "".join(unquoted)
        if word.globs or word.braces:
            word.splits = True
        if _NETWORK.search(word.value):
            self.note(NETWORK_NOTE)
        return word, i

    def _double_quoted(self, i: int, value: list[str], word: Word, starts: Any) -> int:
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
                starts()
                j = self._backtick(i, word)
                value.append(src[i:j])
                word.expands = True
                i = j
                continue
            if c == "$":
                j, expanded = self._dollar(i, word, in_dq=True)
                if expanded:
                    starts()
                    text = src[i:j]
                    if text in ("$@", "${@}") or re.match(r"\$\{!?\w+\[@\]", text):
                        word.splits = True
                value.append(src[i:j])
                word.expands = word.expands or expanded
                i = j
                continue
            value.append(c)
            i += 1
        raise SandboxParseError("unterminated double quote")

    def _backtick(self, i: int, sink: Word) -> int:
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
                toks, _ = self._nested(text).tokens(0)
                sink.subs.append(toks)
                return j + 1
            inner.append(c)
            j += 1
        raise SandboxParseError("unterminated backtick command substitution")

    def _arith_end(self, i: int) -> int | None:
        """End of `$((...))` starting at i, or None when bash reads `$( (...) )` instead."""
        src, n = self.src, len(self.src)
        depth, j = 0, i + 3
        while j < n:
            c = src[j]
            if c == "(":
                depth += 1
            elif c == ")":
                if depth:
                    depth -= 1
                elif src.startswith("))", j):
                    return j + 2
                else:
                    return None
            j += 1
        raise SandboxParseError("unterminated arithmetic expansion '$(('")

    def _arith(self, inner: str, sink: Word, form: str) -> None:
        found = self.expansions(inner)
        sink.subs.extend(found.subs)
        if not _SAFE_ARITH.fullmatch(inner):
            self.note(f"arithmetic on names or expansions ({form})")

    def _dollar(self, i: int, sink: Word, *, in_dq: bool) -> tuple[int, bool]:
        """Consume an expansion at `$`; returns (end, whether it expands at run time)."""
        src, n = self.src, len(self.src)
        nxt = src[i + 1] if i + 1 < n else ""
        if src.startswith("$((", i):
            end = self._arith_end(i)
            if end is not None:
                self._arith(src[i + 3 : end - 2], sink, "$((...))")
                return end, True
        if nxt == "[":
            depth, j = 1, i + 2
            while j < n and depth:
                depth += {"[": 1, "]": -1}.get(src[j], 0)
                j += 1
            if depth:
                raise SandboxParseError("unterminated arithmetic expansion '$['")
            self._arith(src[i + 2 : j - 1], sink, "$[...]")
            return j, True
        if nxt == "(":
            toks, j = self._nested(src).tokens(i + 2, in_subst=True)
            sink.subs.append(toks)
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
                        self._backtick(j, sink)
                        if c == "`"
                        else self._dollar(j, sink, in_dq=True)[0]
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
            inner = src[i + 2 : j - 1]
            if not _SAFE_PARAM.fullmatch(inner):
                self.note(f"the parameter expansion '${{{inner}}}'")
            return j, True
        if nxt and nxt in _SPECIAL_PARAMS:
            return i + 2, True
        m = _NAME_CHARS.match(src, i + 1)
        if m:
            return m.end(), True
        return i + 1, False
