"""Commands a line starts, looking through wrappers (sudo, env, xargs, find -exec, sh -c, trap...).

Besides the commands, analysis yields `notes` (constructs strict mode refuses) and `refusals`
(constructs refused in every mode: assignments that hijack commands, `hash -p`, `enable -f`...).
"""

from __future__ import annotations

import re

from .lexer import _ASSIGNMENT, MAX_DEPTH, SandboxParseError, Word
from .lookthrough import _Command, _dynamic_command, _LookThrough, _skip_options, _Stdin
from .names import assignment_name, hijacks, strict_assignment_note
from .parser import _Invocation, _Parser, _tokenize
from .wrappers import (
    ASSIGNING,
    INTERPRETERS,
    SCRIPT_OPTIONS,
    SHELLS,
    STRICT_REFUSED_BUILTINS,
    STRICT_SHELL_FLAGS,
    STRICT_SHELL_OPTIONS,
    TRANSPARENT,
    WRAPPERS,
)

MAX_LENGTH = 100_000
_FD_PATHS = re.compile(r"/dev/stdin|/dev/fd/\d+|/proc/(self|\d+|thread-self)/fd/\d+")


class _Analyzer(_LookThrough):
    """Turns parsed invocations into the commands they start (wrappers looked through)."""

    def __init__(
        self,
        depth: int,
        notes: list[str] | None = None,
        refusals: list[tuple[str, str]] | None = None,
    ) -> None:
        self.depth = depth
        self.notes: list[str] = [] if notes is None else notes
        self.refusals: list[tuple[str, str]] = [] if refusals is None else refusals

    def note(self, reason: str) -> None:
        if reason not in self.notes:
            self.notes.append(reason)

    def refuse(self, label: str, reason: str) -> None:
        self.refusals.append((label, reason))

    def source(self, src: str) -> list[_Command]:
        if len(src) > MAX_LENGTH:
            raise SandboxParseError("the command is too long to check")
        if "\x00" in src:
            raise SandboxParseError("the command contains a NUL byte")
        toks = _tokenize(src, self.depth, self.notes)
        invocations = _Parser(toks, self.depth, self.notes).parse()
        commands: list[_Command] = []
        for inv in invocations:
            commands.extend(self.invocation(inv))
        return commands

    def nested(self, text: str) -> list[_Command]:
        cmds = _Analyzer(self.depth + 1, self.notes, self.refusals).source(text)
        for c in cmds:
            c.inner = True
        return cmds

    # ------------------------------------------------------------------------ invocations
    def invocation(self, inv: _Invocation) -> list[_Command]:
        for w in inv.assigns:
            self._assignment(w)
        stdin = _Stdin("pipe") if inv.piped_in else _Stdin("none")
        for op, target in inv.redirects:
            if op == "<<<":
                stdin = _Stdin("text", target.value + "\n", not target.dynamic)
            elif op in ("<<", "<<-"):
                stdin = _Stdin("text", target.body or "", target.body_literal)
            elif op in ("<", "<>") or (op == "<&" and not target.value.isdigit()):
                stdin = _Stdin("file", target.value, not target.dynamic)
        if not inv.argv:
            return [_Command(name="", args=[], redirects=inv.redirects)] if inv.redirects else []
        cmds = self.unwrap(inv.argv, stdin)
        owner = next((c for c in reversed(cmds) if not c.inner and c.name), None)
        if owner is None:
            owner = _Command(name="", args=[])
            cmds.append(owner)
        owner.redirects = inv.redirects
        first = cmds[0]
        if first.base in inv.functions:
            first.findings.append(("@fork_bomb", f"function {first.base!r} calls itself"))
        if inv.piped_in and any(f[0] == "stdin" for c in cmds for f in c.findings):
            cmds[0].findings.append(("@pipe_to_shell", "a pipe feeds a shell or interpreter"))
        for c in cmds:
            c.findings = [f for f in c.findings if f[0] != "stdin"]
        return [c for c in cmds if c.name or c.redirects]

    def _assignment(self, word: Word) -> None:
        name = assignment_name(word.raw)
        if hijacks(name):
            self.refuse(name, f"assigning {name} changes which command runs")
        note = strict_assignment_note(word)
        if note:
            self.note(note)

    # ------------------------------------------------------------------------------ unwrap
    def unwrap(self, words: list[Word], stdin: _Stdin, *, appended: bool = False) -> list[_Command]:
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
            rest = words[1:]
            cmd = _Command(head.value, [w.value for w in rest], words=rest, appended=appended)
            base = cmd.base
            if base in TRANSPARENT and cmd.name == base:
                words, hidden = _skip_options(rest, TRANSPARENT[base], 0, False)
                if hidden is not None:
                    out.append(_dynamic_command(hidden))
                continue
            out.append(cmd)
            if base in STRICT_REFUSED_BUILTINS and cmd.name == base:
                self.note(f"the builtin {base!r}")
            self._builtin_effects(cmd, rest)
            if base in SHELLS:
                out.extend(self._shell(cmd, rest, stdin, appended))
                return out
            if INTERPRETERS.fullmatch(base):
                if all(w.value.startswith("-") and w.value not in ("-c", "-e") for w in rest):
                    cmd.findings.append(("stdin", ""))
                return out
            handler = {
                "eval": self._eval,
                "trap": self._trap,
                "source": self._source,
                ".": self._source,
                "find": self._find,
                "watch": self._watch,
                "alias": self._alias,
                "mapfile": self._callback,
                "readarray": self._callback,
                "compgen": self._callback,
                "complete": self._callback,
                "test": self._test,
                "[": self._test,
            }.get(base)
            if handler is not None:
                out.extend(handler(rest, stdin))
                return out
            if base in SCRIPT_OPTIONS and any(
                w.value in SCRIPT_OPTIONS[base] or w.value.startswith("--command=") for w in rest
            ):
                out.extend(self._option_script(rest, SCRIPT_OPTIONS[base]))
                return out
            if base == "env" and any(w.value in ("-S", "--split-string") for w in rest):
                idx = next(i for i, w in enumerate(rest) if w.value in ("-S", "--split-string"))
                out.extend(self._joined(rest[idx + 1 :]))
                return out
            spec = WRAPPERS.get(base)
            if spec is None:
                return out
            if base == "env":
                for w in rest:
                    if _ASSIGNMENT.match(w.raw) and hijacks(assignment_name(w.raw)):
                        self.refuse(base, f"env sets {assignment_name(w.raw)}")
            if base == "xargs":
                return out + self._xargs(rest, spec)
            words, hidden = _skip_options(rest, *spec)
            if hidden is not None:
                out.append(_dynamic_command(hidden))
                return out
        return out

    def _builtin_effects(self, cmd: _Command, rest: list[Word]) -> None:
        """Refuse, in every mode, builtins that remap a command name or load code."""
        base, values = cmd.base, [w.value for w in rest]
        if base == "hash" and any(v.startswith("-") and "p" in v for v in values):
            self.refuse(base, "hash -p maps a command name to another program")
        if base == "enable" and any(v.startswith("-") and "f" in v for v in values):
            self.refuse(base, "enable -f loads a builtin from a shared object")
        if base in ASSIGNING:
            for w in rest:
                if hijacks(assignment_name(w.value)):
                    self.refuse(base, f"{base} assigns {assignment_name(w.value)}")
        if base == "printf" and any(v.startswith("-v") for v in values):
            self.note("printf -v (it assigns a variable)")

    # ------------------------------------------------------------------------------ shells
    def _shell(
        self, cmd: _Command, rest: list[Word], stdin: _Stdin, appended: bool
    ) -> list[_Command]:
        """`bash [-opts] -c 'script'`: check the script; a bare shell reads stdin."""
        with_c = reads_stdin = False
        i = 0
        while i < len(rest):
            w = rest[i]
            v = w.value
            if w.raw.startswith("<("):
                break  # `bash <(curl ...)`: a script fed from a process substitution
            if w.dynamic:
                return [_dynamic_command(w)]
            if v == "--" or v == "-":
                i += 1
                break
            if v in ("-o", "+o", "--rcfile", "--init-file", "-O", "+O"):
                arg = rest[i + 1].value if i + 1 < len(rest) else ""
                if not (v in ("-o", "+o") and arg in STRICT_SHELL_OPTIONS):
                    self.note(f"the shell option {v} {arg}".rstrip())
                i += 2
                continue
            if v.startswith("--"):
                if v not in ("--norc", "--noprofile"):
                    self.note(f"the shell option {v}")
                i += 1
                continue
            if len(v) > 1 and v[0] in "-+":
                flags = v[1:]
                with_c = with_c or (v[0] == "-" and "c" in flags)
                reads_stdin = reads_stdin or (v[0] == "-" and "s" in flags)
                if not set(flags) <= STRICT_SHELL_FLAGS:
                    self.note(f"the shell option {v}")
                i += 1
                continue
            break
        operands = rest[i:]
        if with_c:
            if not operands:
                if appended:
                    self.refuse(cmd.name, f"xargs feeds {cmd.name} -c a script from its input")
                    return []
                raise SandboxParseError(f"{cmd.name} -c without a command")
            if operands[0].dynamic:
                return [_dynamic_command(operands[0])]
            return self.nested(operands[0].value)
        if operands and not reads_stdin:
            script = operands[0]
            if script.raw.startswith("<(") or _FD_PATHS.fullmatch(script.value):
                if stdin.kind == "text" and script.value == "/dev/stdin":
                    return self._stdin_script(cmd, stdin)
                cmd.findings.append(("@pipe_to_shell", "a process substitution feeds a shell"))
            self.note(f"{cmd.name} running a script file the checker cannot see")
            return []
        return self._stdin_script(cmd, stdin)

    def _stdin_script(self, cmd: _Command, stdin: _Stdin) -> list[_Command]:
        """A shell reading its script from standard input: check it when the text is known."""
        if stdin.kind == "text":
            if not stdin.literal:
                return [_Command(name=f"{cmd.name} <<< ...", args=[], dynamic=True)]
            return self.nested(stdin.text) if stdin.text.strip() else []
        cmd.findings.append(("stdin", ""))
        if stdin.kind == "file":
            cmd.findings.append(("@pipe_to_shell", "a shell reads its script from a file"))
        self.note(f"{cmd.name} reading a script from its input")
        return []

    def _source(self, rest: list[Word], stdin: _Stdin) -> list[_Command]:
        """`source FILE`: the file cannot be checked (strict refuses; permissive trusts it)."""
        self.note("source / . (it runs a script file the checker cannot see)")
        if not rest:
            return []
        script = rest[0]
        if script.raw.startswith("<(") or _FD_PATHS.fullmatch(script.value):
            if stdin.kind == "text" and script.value == "/dev/stdin":
                return self._stdin_script(_Command(name="source", args=[]), stdin)
            return [
                _Command(
                    name="source",
                    args=[],
                    findings=[("@pipe_to_shell", "source reads a script from a stream")],
                )
            ]
        return []

    # ------------------------------------------------------------------- script arguments
    def _joined(self, words: list[Word]) -> list[_Command]:
        hidden = next((w for w in words if w.dynamic), None)
        if hidden is not None:
            return [_dynamic_command(hidden)]
        return self.nested(" ".join(w.value for w in words)) if words else []

    def _eval(self, rest: list[Word], stdin: _Stdin) -> list[_Command]:
        words = rest[1:] if rest and rest[0].value == "--" else rest
        return self._joined(words)
