"""Variable names a line may not assign: the strict deny list and the names refused in every mode.

An assignment changes what later commands do without running anything itself: `BASH_CMDS[ls]=`
remaps a command name, `LD_PRELOAD=` loads code into every program, `PAGER=` or `LESSOPEN=` make
ordinary tools run a command. Strict mode accepts only `NAME=literal` for names outside
`STRICT_DENIED`; every mode refuses the names in `HIJACK` (no plausible command needs them).
"""

from __future__ import annotations

import fnmatch
import re

from .lexer import Word

# Refused in every mode: they remap commands or run code before or instead of the checked one.
HIJACK = (
    "BASH_CMDS",
    "BASH_ALIASES",
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_*",
    "BASH_LOADABLES_PATH",
    "BASH_XTRACEFD",
    "LD_PRELOAD",
    "LD_AUDIT",
    "DYLD_INSERT_LIBRARIES",
    "PROMPT_COMMAND",
    "PS0",
    "PS4",
    "SHELLOPTS",
    "BASHOPTS",
    "EXECIGNORE",
)
# Strict mode: assignments to these names (globs) are refused; everything else is `NAME=literal`.
STRICT_DENIED = (
    *HIJACK,
    "BASH*",
    "LD_*",
    "DYLD_*",
    "PATH",
    "IFS",
    "PS[0-9]",
    "PROMPT_*",
    "CDPATH",
    "GLOBIGNORE",
    "GLOBSORT",
    "FIGNORE",
    "HOME",
    "SHELL",
    "SHLVL",
    "TMPDIR",
    "PYTHON*",
    "PERL*",
    "RUBY*",
    "GEM_*",
    "NODE_*",
    "NPM_*",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "LUA_*",
    "TCL*",
    "GIT_*",
    "HIST*",
    "MAIL*",
    "TMOUT",
    "FUNCNAME",
    "FUNCNEST",
    "COMP*",
    "READLINE_*",
    "INPUTRC",
    "OPT*",
    "RANDOM",
    "SRANDOM",
    "SECONDS",
    "LINENO",
    "EPOCH*",
    "GROUPS",
    "DIRSTACK",
    "PIPESTATUS",
    "POSIXLY_CORRECT",
    "TEXTDOMAIN*",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "NLSPATH",
    "LOCPATH",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "MALLOC_*",
    "HOSTALIASES",
    "RESOLV_*",
    "OPENSSL_*",
    "SSL_*",
    "PAGER",
    "MANPAGER",
    "GIT_PAGER",
    "LESS*",
    "EDITOR",
    "VISUAL",
    "BROWSER",
    "*ASKPASS*",
    "XDG_*",
    "TERMINFO*",
    "SSH_*",
    "SUDO_*",
    "KRB5*",
    "http_proxy",
    "https_proxy",
    "*_PROXY",
)
_SIMPLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")


def _denied(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def hijacks(name: str) -> bool:
    """Whether assigning `name` is refused in every mode."""
    return _denied(name.split("[", 1)[0], HIJACK)


def assignment_name(raw: str) -> str:
    """The variable an assignment word sets (`a[1]+=x` -> `a`)."""
    return re.split(r"[\[+=]", raw, maxsplit=1)[0]


def strict_assignment_note(word: Word) -> str | None:
    """Why strict mode refuses this assignment word, or None for a plain `NAME=literal`."""
    m = _SIMPLE.match(word.raw)
    if m is None:
        return f"the assignment {word.raw!r} (array subscripts and += are not accepted)"
    name = m.group(1)
    if _denied(name, STRICT_DENIED):
        return f"an assignment to {name} (it changes how commands run)"
    value = word.value[len(m.group(0)) :]
    if word.dynamic or word.tilde or "$" in value or "`" in value:
        return f"the assignment to {name} is not a plain literal"
    return None


def loop_variable_note(word: Word) -> str | None:
    """`for NAME in ...` assigns NAME: the same names are refused as for `NAME=...`."""
    if word.dynamic or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word.raw):
        return f"the loop variable {word.raw!r}"
    if _denied(word.raw, STRICT_DENIED):
        return f"an assignment to {word.raw} (it changes how commands run)"
    return None
