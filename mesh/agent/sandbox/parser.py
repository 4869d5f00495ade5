"""Finds every simple command in a token list: lists, pipelines, groups, compound commands."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .lexer import _ASSIGNMENT, MAX_DEPTH, REDIRECT_OPS, Op, SandboxParseError, Word, _Lexer
from .names import loop_variable_note


# ----------------------------------------------------------------------------------- parser
@dataclass
class _Invocation:
    """One simple command as written, before wrappers are looked through."""

    argv: list[Word]
    redirects: list[tuple[str, Word]]
    piped_in: bool
    functions: frozenset[str]
    assigns: list[Word] = field(default_factory=list)


_OPENERS = {"{": "brace", "if": "if", "while": "loop", "until": "loop"}
_CLOSERS = {"}": "brace", "fi": "if", "done": "loop", "esac": "case"}
# `[[` operators that evaluate their operands as arithmetic (array subscripts run commands).
_TEST_EVAL = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-v", "-R"})
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

    def __init__(self, toks: list[Any], depth: int, notes: list[str] | None = None) -> None:
        if depth > MAX_DEPTH:
            raise SandboxParseError("nesting is too deep")
        self.notes: list[str] = [] if notes is None else notes
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
                self.out.extend(_Parser(sub, self.depth + 1, self.notes).parse())

    def note(self, reason: str) -> None:
        if reason not in self.notes:
            self.notes.append(reason)

    def _push(self, kind: str) -> None:
        if self.pending_function is not None:
            self.note("function definitions")
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
                if tok.note:
                    self.note(tok.note)
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
            for w in words:
                if not w.quoted and not w.expands and w.value in _TEST_EVAL:
                    self.note(f"'[[ ... {w.value} ... ]]' (it evaluates operands as expressions)")
            self._sub(words)
            return False, False
        raise SandboxParseError(f"{kw!r} is not supported here")

    def _for_header(self, kw: str) -> None:
        name = self._peek()
        if not isinstance(name, Word):
            raise SandboxParseError(f"'{kw}' needs a name (C-style loops are not supported)")
        note = loop_variable_note(name)
        if note:
            self.note(note)
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
                    if tok.note:
                        self.note(tok.note)
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
        self.out.append(_Invocation(argv, redirects, piped, functions, assigns))
        return False


def _tokenize(src: str, depth: int, notes: list[str] | None = None) -> list[Any]:
    toks, _ = _Lexer(src, depth, notes).tokens(0)
    return toks
