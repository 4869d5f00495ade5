"""Tables: commands that start other commands, and builtins strict mode does not accept."""

from __future__ import annotations

import re

# base name -> (options taking a value, positional words before the command, accepts NAME=val)
WRAPPERS: dict[str, tuple[frozenset[str], int, bool]] = {
    "sudo": (
        frozenset(
            ["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U"]
            + ["--user", "--group", "--chdir", "--prompt", "--host", "--close-from"]
            + ["--role", "--type", "--command-timeout", "--other-user"]
        ),
        0,
        True,
    ),
    "doas": (frozenset({"-u", "-C"}), 0, False),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir"}), 0, True),
    "nice": (frozenset({"-n", "--adjustment"}), 0, False),
    "ionice": (frozenset({"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"}), 0, False),
    "nohup": (frozenset(), 0, False),
    "setsid": (frozenset(), 0, False),
    "stdbuf": (frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}), 0, False),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1, False),
    "chroot": (frozenset({"--userspec", "--groups"}), 1, False),
    "xargs": (
        frozenset(
            ["-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter"]
            + ["--max-args", "--max-procs", "--max-lines", "--max-chars", "--process-slot-var"]
        ),
        0,
        False,
    ),
    "time": (frozenset({"-o", "-f", "--output", "--format"}), 0, False),
    "strace": (frozenset({"-o", "-e", "-p", "-s", "-u", "-E", "-P", "-a", "-b", "-I"}), 0, False),
    "ltrace": (frozenset({"-o", "-e", "-p", "-s", "-u", "-n", "-a"}), 0, False),
    "taskset": (frozenset(), 1, False),
    "chrt": (frozenset(), 1, False),
    "unbuffer": (frozenset(), 0, False),
    "busybox": (frozenset(), 0, False),
    "caffeinate": (frozenset({"-t", "-w"}), 0, False),
    "flatpak-spawn": (frozenset(), 0, False),
    "runuser": (frozenset({"-u", "-g", "-G", "--user", "--group"}), 0, False),
    "unshare": (frozenset({"-S", "-G", "--setuid", "--setgid", "--wd", "--root"}), 0, False),
    "nsenter": (frozenset({"-t", "-S", "-G", "--target", "--wd", "--root"}), 0, False),
    "setpriv": (frozenset({"--reuid", "--regid", "--groups", "--inh-caps"}), 0, False),
    "prlimit": (frozenset({"-p", "--pid"}), 0, False),
    "numactl": (frozenset({"-C", "-N", "-m", "-p", "-i"}), 0, False),
    "eatmydata": (frozenset(), 0, False),
    "fakeroot": (frozenset({"-l", "-s", "-i"}), 0, False),
    "firejail": (frozenset(), 0, False),
    "pkexec": (frozenset({"--user"}), 0, False),
    "sg": (frozenset(), 1, False),
    "flock": (frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}), 1, False),
    "valgrind": (frozenset(), 0, False),
    "torsocks": (frozenset(), 0, False),
    "proxychains": (frozenset({"-f"}), 0, False),
    "proxychains4": (frozenset({"-f"}), 0, False),
}
# Shell builtins that simply run the next word as the command (not commands themselves).
TRANSPARENT: dict[str, frozenset[str]] = {
    "exec": frozenset({"-a"}),
    "command": frozenset(),
    "builtin": frozenset(),
}
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh"})
INTERPRETERS = re.compile(
    r"(python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|php[0-9.]*|lua.*|tclsh.*|wish.*)"
)
# Commands whose option (-c ...) is a shell script.
SCRIPT_OPTIONS: dict[str, frozenset[str]] = {
    "su": frozenset({"-c", "--command", "--session-command"}),
    "script": frozenset({"-c", "--command"}),
    "flock": frozenset({"-c", "--command"}),
    "sg": frozenset({"-c"}),
}
# Builtins strict mode refuses whatever the allow list says: they assign variables, evaluate
# text later or as arithmetic, change the shell's options, or load code.
STRICT_REFUSED_BUILTINS = frozenset(
    [
        "let",
        "declare",
        "typeset",
        "export",
        "local",
        "readonly",
        "read",
        "mapfile",
        "readarray",
        "getopts",
        "hash",
        "enable",
        "alias",
        "unalias",
        "set",
        "shopt",
        "unset",
        "source",
        ".",
        "fc",
        "complete",
        "compgen",
        "compopt",
        "bind",
        "history",
        "coproc",
    ]
)
# Builtins that assign the variables they are given by name.
ASSIGNING = frozenset(
    ["declare", "typeset", "export", "local", "readonly", "read", "mapfile", "readarray"]
    + ["getopts", "printf", "unset", "wait"]
)
# Shell options strict mode accepts (`bash -ec '...'`); -x is refused (PS4 is evaluated).
STRICT_SHELL_FLAGS = frozenset("ceufn")
STRICT_SHELL_OPTIONS = frozenset({"pipefail", "errexit", "nounset", "noglob"})
# Commands that neither change directory nor create links: a file redirection in a line that
# runs only these (besides the redirected command) lands where the check resolved it.
INERT = frozenset(
    ["echo", "printf", "ls", "cat", "true", "false", "pwd", "test", "[", "wc", "head", "tail"]
    + ["grep", "egrep", "fgrep", "sort", "uniq", "cut", "tr", "date", "whoami", "id", "uname"]
    + ["hostname", "basename", "dirname", "realpath", "readlink", "stat", "file", "du", "df"]
    + ["sleep", "seq", "yes", "md5sum", "sha1sum", "sha256sum", "diff", "cmp", "env", "which"]
)
