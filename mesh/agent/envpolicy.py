"""Which environment variables a task may set: one list, used by the node and by the hub.

A task's `env` reaches the process that runs its command. Many variables make a program run
code other than the checked command (a preload library, a startup file, an options string, a
config that names a helper), or change what a name resolves to. The node refuses them before
running; the hub imports this module and refuses the same names before queueing (400). Names
match case-insensitively (some tools read lower-case variants). No Django here: the agent
package ships alone.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Glob patterns (upper case) of names a task may not set.
DENIED_ENV_PATTERNS: tuple[str, ...] = (
    # the shell: startup files, options, prompts, word splitting, name lookup
    "PATH",
    "HOME",
    "ENV",
    "BASH_*",
    "SHELLOPTS",
    "BASHOPTS",
    "POSIXLY_CORRECT",
    "PS0",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "EXECIGNORE",
    "FIGNORE",
    "INPUTRC",
    "SHELL",
    "TMOUT",
    "HISTFILE",
    # the dynamic linker and libc
    "LD_*",
    "DYLD_*",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "MALLOC_*",
    "OPENSSL_*",
    # interpreters: library paths, startup code, options strings
    "PYTHON*",
    "PERL*",
    "RUBY*",
    "GEM_*",
    "BUNDLE_*",
    "NODE_*",
    "NPM_CONFIG_*",
    "LUA_*",
    "PHPRC",
    "PHP_INI_*",
    "TCLLIBPATH",
    "R_PROFILE*",
    "R_ENVIRON*",
    "R_LIBS*",
    "JAVA_*",
    "_JAVA_*",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "MAVEN_OPTS",
    "GRADLE_OPTS",
    "SBT_OPTS",
    "ANT_OPTS",
    # tools that run helpers named by the environment
    "GIT_*",
    "XDG_*",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "*_PAGER",
    "MANPAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "LESSKEY",
    "*_ASKPASS",
    "SSH_*",
    "BROWSER",
    "VIMINIT",
    "EXINIT",
    "MYVIMRC",
    "MAKEFLAGS",
    "MFLAGS",
    "GNUMAKEFLAGS",
    "MAKEFILES",
    "WGETRC",
    "CURL_HOME",
    "SUDO_*",
)

#: Exceptions to the patterns above: names that only describe, never run anything.
ALLOWED_ENV_NAMES = frozenset(
    {
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "PYTHONHASHSEED",
        "NODE_ENV",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
        "GIT_TERMINAL_PROMPT",
    }
)


def env_name_refusal(name: object) -> str:
    """Why a task may not set `name` ("" if it may); the reason names the variable."""
    if not isinstance(name, str) or not ENV_NAME.match(name):
        return f"{name!r} is not a valid variable name"
    upper = name.upper()
    if upper in ALLOWED_ENV_NAMES:
        return ""
    if any(fnmatchcase(upper, pattern) for pattern in DENIED_ENV_PATTERNS):
        return f"the variable {name} may not be set by a task"
    return ""
