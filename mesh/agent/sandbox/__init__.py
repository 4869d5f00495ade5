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

from .lexer import SandboxParseError
from .policy import RULES, Policy, Verdict, check_command, default_policy, parse_commands

__all__ = [
    "RULES",
    "Policy",
    "SandboxParseError",
    "Verdict",
    "check_command",
    "default_policy",
    "parse_commands",
]
