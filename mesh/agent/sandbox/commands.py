"""Commands a line starts, looking through wrappers (sudo, env, xargs, find -exec, sh -c...)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .lexer import _ASSIGNMENT, MAX_DEPTH, SandboxParseError, Word
from .parser import _Invocation, _Parser, _tokenize

MAX_LENGTH = 100_000


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
