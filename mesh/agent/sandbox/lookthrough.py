"""Look-through handlers: the commands started by trap, eval, alias, find -exec, xargs, watch...

A mixin of `_Analyzer` (commands.py), which provides `nested`, `unwrap`, `note` and `refuse`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .lexer import _ASSIGNMENT, Word


@dataclass
class _Command:
    """A command the line would start, after looking through wrappers."""

    name: str
    args: list[str]
    dynamic: bool = False
    redirects: list[tuple[str, Word]] = field(default_factory=list)
    findings: list[tuple[str, str]] = field(default_factory=list)  # (rule, detail)
    words: list[Word] = field(default_factory=list)  # the argument words (args as written)
    appended: bool = False  # xargs appends arguments the checker cannot see
    inner: bool = False  # started by a script the line passes on (`bash -c '...'`, eval...)

    @property
    def base(self) -> str:
        return self.name.rstrip("/").rsplit("/", 1)[-1] or self.name


@dataclass
class _Stdin:
    """What a command reads on standard input: a pipe, a file, or a known text."""

    kind: str  # "pipe", "file", "text", "none"
    text: str = ""
    literal: bool = True


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


class _LookThrough:
    """Handlers for commands whose arguments are commands or scripts."""

    nested: Any
    unwrap: Any
    note: Any
    _joined: Callable[[list[Word]], list[_Command]]

    def _trap(self, rest: list[Word], stdin: _Stdin) -> list[_Command]:
        """`trap 'action' SIGNAL...`: the action runs later; check it now."""
        words = list(rest)
        while words and words[0].value.startswith("-") and words[0].value not in ("-", "--"):
            if words[0].dynamic:
                return [_dynamic_command(words[0])]
            words = words[1:]
        if words and words[0].value == "--":
            words = words[1:]
        if len(words) < 2:
            return []
        action = words[0]
        if action.dynamic:
            return [_dynamic_command(action)]
        return self.nested(action.value) if action.value not in ("", "-") else []

    def _alias(self, rest: list[Word], stdin: _Stdin) -> list[_Command]:
        out: list[_Command] = []
        for w in rest:
            if "=" in w.value and not w.value.startswith("-"):
                if w.dynamic:
                    return [_dynamic_command(w)]
                out.extend(self.nested(w.value.split("=", 1)[1] or "true"))
        return out

    def _callback(self, rest: list[Word], stdin: _Stdin) -> list[_Command]:
        """`mapfile -C cmd`, `compgen -C cmd`: the callback is a command string."""
        for i, w in enumerate(rest):
            if w.value in ("-C", "-F") and i + 1 < len(rest):
                cb = rest[i + 1]
                if cb.dynamic:
                    return [_dynamic_command(cb)]
                return self.nested(cb.value)
        return []

    def _watch(self, rest: list[Word], stdin: _Stdin) -> list[_Command]:
        options = frozenset({"-n", "--interval", "-d", "--differences", "-q", "--equexit"})
        words, hidden = _skip_options(rest, options, 0, False)
        if hidden is not None:
            return [_dynamic_command(hidden)]
        return self._joined(words)

    def _test(self, rest: list[Word], stdin: _Stdin) -> list[_Command]:
        """`test`/`[`: -v and -R evaluate array subscripts; a computed word may be either."""
        args = rest[:-1] if rest and rest[-1].value == "]" else rest
        literal_ops = [w.value for w in args if not w.dynamic]
        if any(v in ("-v", "-R") for v in literal_ops):
            self.note("test -v / -R (it evaluates array subscripts)")
        dyn = [i for i, w in enumerate(args) if w.dynamic]
        safe = len(args) <= 1 or (len(args) == 2 and dyn == [1])
        safe = safe or (len(args) == 3 and 1 not in dyn)
        if dyn and not safe:
            self.note("test with a computed operator position")
        return []

    def _option_script(self, rest: list[Word], flags: frozenset[str]) -> list[_Command]:
        for i, w in enumerate(rest):
            if w.value in flags and i + 1 < len(rest):
                script = rest[i + 1]
                return [_dynamic_command(script)] if script.dynamic else self.nested(script.value)
            if w.value.startswith("--command="):
                if w.dynamic:
                    return [_dynamic_command(w)]
                return self.nested(w.value.split("=", 1)[1])
        return []

    def _find(self, rest: list[Word], stdin: _Stdin) -> list[_Command]:
        out: list[_Command] = []
        if any(w.dynamic for w in rest if w.value not in ("{}",)):
            self.note("a computed argument to find (it could add -exec)")
        starts: list[Word] = []
        k = 0
        while (
            k < len(rest)
            and rest[k].value in ("-H", "-L", "-P", "-D")
            or (k < len(rest) and rest[k].value.startswith("-O"))
        ):
            k += 2 if rest[k].value == "-D" else 1
        for w in rest[k:]:
            if w.value.startswith(("-", "(", "!")) and not w.dynamic:
                break
            starts.append(w)
        confined = all(
            not w.dynamic and not w.value.startswith(("/", "~")) and ".." not in w.value.split("/")
            for w in starts
        ) and not any(w.value in ("-L", "-follow", "-H") for w in rest)
        i = 0
        while i < len(rest):
            if rest[i].value in ("-exec", "-execdir", "-ok", "-okdir") and not rest[i].expands:
                j = i + 1
                while j < len(rest) and rest[j].value not in (";", "+"):
                    j += 1
                words = rest[i + 1 : j]
                if not confined:  # `{}` may be any path under a starting point
                    words = [replace(w, expands=True) if "{}" in w.value else w for w in words]
                out.extend(self.unwrap(words, _Stdin("none")))
                i = j
            i += 1
        return out

    def _xargs(self, rest: list[Word], spec: tuple[frozenset[str], int, bool]) -> list[_Command]:
        """xargs runs its command with words read from stdin (and `-I` replaces a string)."""
        repl: str | None = None
        for i, w in enumerate(rest):
            v = w.value
            if v in ("-I", "--replace") and i + 1 < len(rest):
                repl = rest[i + 1].value
            elif v.startswith("-I") and len(v) > 2:
                repl = v[2:]
            elif v.startswith("--replace="):
                repl = v.split("=", 1)[1]
            elif v == "-i" or v == "--replace":
                repl = "{}"
            elif v.startswith("-i") and len(v) > 2:
                repl = v[2:]
            if not v.startswith("-"):
                break
        words, hidden = _skip_options(rest, spec[0], 0, False)
        if hidden is not None:
            return [_dynamic_command(hidden)]
        if repl:
            words = [replace(w, expands=True, splits=True) if repl in w.value else w for w in words]
        if not words:
            return []
        return self.unwrap(words, _Stdin("none"), appended=True)
