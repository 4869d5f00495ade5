"""Token types and tables of the shell tokeniser (words, operators, the forms strict mode knows)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 16
BLANKS = " \t"
_WORD_END = " \t\n;&|()"


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
HEREDOC_OPS = frozenset({"<<", "<<-", "<<<"})
_WRITE_REDIRECTS = frozenset({">", ">>", ">|", "<>", "&>", "&>>", ">&"})
_NAME_CHARS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_PARAMS = set("@*#?$!-0123456789")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_FD_VAR = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
# ${...} forms strict mode understands: a name, a positional or special parameter, its length,
# and defaults / pattern removal / case changes whose word is a plain literal.
_SAFE_PARAM = re.compile(
    r"(?:[A-Za-z_]\w*|[0-9]+|[@*#?$!0-9-]|#[A-Za-z_]\w*|#)"
    r"|[A-Za-z_]\w*(?::?[-+?]|##?|%%?|\^\^?|,,?)[\w ./,:@%+*?~-]*"
)
NETWORK_NOTE = "/dev/tcp or /dev/udp (a network connection from the shell)"
_NETWORK = re.compile(r"/dev/(tcp|udp)(/|$)")
_SAFE_ARITH = re.compile(r"[0-9\s+\-*/%()<>=!&|^~?:,]*")


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
    prefix: str | None = None  # the literal text before the first expansion (None: no expansion)
    splits: bool = False  # an unquoted expansion or "$@": may become several words (or none)
    tilde: bool = False  # an unquoted `~` (tilde expansion)
    body: str | None = None  # a here-document delimiter: the document's body
    body_literal: bool = True  # the body is not expanded (quoted delimiter, or no expansion)

    @property
    def dynamic(self) -> bool:
        """True when the shell would compute this word at run time (expansion, glob, braces)."""
        return self.expands or self.globs or self.braces

    @property
    def globs(self) -> bool:
        u = self.unquoted
        return "*" in u or "?" in u or re.search(r"\[.*\]", u) is not None

    @property
    def braces(self) -> bool:
        return re.search(r"\{[^{}]*(,|\.\.)[^{}]*\}", self.unquoted) is not None

    @property
    def literal_prefix(self) -> str:
        """The text a run-time value of this word certainly starts with."""
        if self.tilde:
            return ""
        text = self.value if self.prefix is None else self.prefix
        if self.globs or self.braces:
            cut = min((text.find(c) for c in "*?[{" if c in text), default=len(text))
            text = text[:cut]
        return text


@dataclass
class Op:
    """An operator token (`;`, `&&`, `|`, `(`, a redirection, a newline...)."""

    op: str
    start: int
    note: str = ""  # a strict-mode note (the `{var}>` form assigns a variable)
