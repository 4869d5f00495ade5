"""Policies, the built-in argument rules, and `check_command` (deny wins)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .commands import _Analyzer, _Command
from .lexer import _WRITE_REDIRECTS, SandboxParseError

MODES = ("permissive", "strict")

RULES: dict[str, str] = {
    "@root_wipe": "recursive removal of /, a top-level system directory or the home directory",
    "@recursive_perm_root": "recursive chmod/chown/chgrp of / or a top-level system directory",
    "@block_device_write": "writing to a block device (dd of=/dev/sda, > /dev/sda, ...)",
    "@fork_bomb": "a shell function that calls itself (fork bomb)",
    "@pipe_to_shell": "piping into a shell or interpreter (curl ... | sh)",
}


def default_policy() -> dict[str, Any]:
    """The policy a newly registered node gets: permissive, denying what no one wants unasked."""
    return {
        "mode": "permissive",
        "allowed_commands": [],
        "denied_commands": [
            "mkfs",
            "mkfs.*",
            "mke2fs",
            "mkswap",
            "fdisk",
            "sfdisk",
            "cfdisk",
            "gdisk",
            "sgdisk",
            "parted",
            "wipefs",
            "blkdiscard",
            "shutdown",
            "reboot",
            "halt",
            "poweroff",
            "init",
            "telinit",
            "systemctl poweroff",
            "systemctl reboot",
            "systemctl halt",
            "systemctl kexec",
            "@root_wipe",
            "@recursive_perm_root",
            "@block_device_write",
            "@fork_bomb",
        ],
        "sensitive_commands": [
            "rm",
            "rmdir",
            "shred",
            "dd",
            "sudo",
            "su",
            "doas",
            "pkexec",
            "apt",
            "apt-get",
            "aptitude",
            "dpkg",
            "dnf",
            "yum",
            "rpm",
            "zypper",
            "pacman",
            "apk",
            "snap",
            "flatpak",
            "brew",
            "pip",
            "pip3",
            "pip3.*",
            "pipx",
            "npm",
            "pnpm",
            "yarn",
            "gem",
            "cargo install",
            "systemctl",
            "service",
            "kill",
            "pkill",
            "killall",
            "chmod",
            "chown",
            "chgrp",
            "docker",
            "podman",
            "kubectl",
            "crontab",
            "useradd",
            "userdel",
            "usermod",
            "passwd",
            "mount",
            "umount",
            "iptables",
            "ufw",
            "git push",
            "@pipe_to_shell",
        ],
    }


@dataclass(frozen=True)
class Policy:
    """A node's sandbox policy (the shape of `Node.sandbox_policy`)."""

    mode: str = "permissive"
    allowed_commands: tuple[str, ...] = ()
    denied_commands: tuple[str, ...] = ()
    sensitive_commands: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Policy:
        """Validate and build a policy; raises ValueError with a readable message."""
        data = dict(data or {})
        mode = data.get("mode", "permissive")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("allowed_commands", "denied_commands", "sensitive_commands"):
            value = data.get(key) or []
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} must be a list of strings")
            cleaned = tuple(" ".join(v.split()) for v in value if v.strip())
            for entry in cleaned:
                if entry.startswith("@"):
                    if key == "allowed_commands":
                        raise ValueError(f"{key}: rules like {entry!r} can only deny or flag")
                    if entry not in RULES:
                        raise ValueError(f"{key}: unknown rule {entry!r}")
            lists[key] = cleaned
        unknown = set(data) - {"mode", "allowed_commands", "denied_commands", "sensitive_commands"}
        unknown.discard("workspace_root")
        if unknown:
            raise ValueError(f"unknown policy keys: {', '.join(sorted(unknown))}")
        return cls(mode=mode, **lists)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for storage and the wire)."""
        return {
            "mode": self.mode,
            "allowed_commands": list(self.allowed_commands),
            "denied_commands": list(self.denied_commands),
            "sensitive_commands": list(self.sensitive_commands),
        }


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one command line."""

    allowed: bool
    sensitive: bool
    offending: str | None
    reason: str
    commands: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- rules, policy
_SYSTEM_DIRS = frozenset(
    [
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/usr",
        "/var",
        "/System",
        "/Library",
        "/Users",
        "/Applications",
        "/private",
    ]
)
_HOME_FORMS = frozenset({"~", "$HOME", "${HOME}"})
_BLOCK_DEVICE = re.compile(
    r"/dev/(sd[a-z]+\d*|hd[a-z]+\d*|vd[a-z]+\d*|xvd[a-z]+\d*|nvme\d+n\d+(p\d+)?|mmcblk\d+(p\d+)?"
    r"|md\d+|dm-\d+|loop\d+|sr\d+|disk\d+(s\d+)?|rdisk\d+(s\d+)?|disk/.+|mapper/.+)"
)


def _critical_path(value: str) -> bool:
    v = re.sub(r"/{2,}", "/", value.strip())
    for suffix in ("/*", "/.", "/"):
        while len(v) > 1 and v.endswith(suffix):
            v = v[: -len(suffix)] or "/"
    return v in ("/", "/*", "/.", "/..") or v in _SYSTEM_DIRS or v in _HOME_FORMS


def _recursive(args: list[str]) -> bool:
    return any(
        a in ("--recursive", "-R", "-r")
        or (a.startswith("-") and not a.startswith("--") and ("r" in a or "R" in a))
        for a in args
    )


def _rule_findings(cmd: _Command) -> list[tuple[str, str]]:
    found = list(cmd.findings)
    base, args = cmd.base, cmd.args
    operands = [a for a in args if not a.startswith("-")]
    wipe = "--no-preserve-root" in args or any(_critical_path(a) for a in operands)
    if base == "rm" and _recursive(args) and wipe:
        found.append(("@root_wipe", "recursive removal of a critical path"))
    perm_root = any(_critical_path(a) for a in operands[1:])
    if base in ("chmod", "chown", "chgrp") and _recursive(args) and perm_root:
        found.append(("@recursive_perm_root", f"recursive {base} of a critical path"))
    targets = [t for op, t in cmd.redirects if op in _WRITE_REDIRECTS]
    if base == "dd":
        targets += [a[3:] for a in args if a.startswith("of=")]
    if base in ("tee", "shred", "cp", "cat", "pv", "badblocks"):
        targets += operands[-1:] if base == "cp" else operands
    if any(_BLOCK_DEVICE.fullmatch(t) for t in targets):
        found.append(("@block_device_write", "writes to a block device"))
    return found


def _matches(entry: str, cmd: _Command, *, allow_list: bool) -> bool:
    """Whether a policy list entry matches this command."""
    if entry.startswith("@"):
        return False
    parts = entry.split()
    pattern, prefix = parts[0], parts[1:]
    if "/" in pattern:
        hit = fnmatch.fnmatchcase(cmd.name, pattern)
    elif allow_list and "/" in cmd.name:
        hit = False
    else:
        hit = fnmatch.fnmatchcase(cmd.base, pattern)
    if not hit or len(cmd.args) < len(prefix):
        return False
    return all(fnmatch.fnmatchcase(a, p) for a, p in zip(cmd.args, prefix))


def _first_match(entries: Iterable[str], cmd: _Command, *, allow_list: bool = False) -> str | None:
    return next((e for e in entries if _matches(e, cmd, allow_list=allow_list)), None)


def parse_commands(command: str) -> list[str]:
    """The command names a line would start (wrappers looked through); raises SandboxParseError."""
    return [c.name for c in _Analyzer(0).source(command) if c.name]


def check_command(policy: Policy, command: str) -> Verdict:
    """Check every command a shell line would start against the policy; deny wins."""
    if not isinstance(command, str) or not command.strip():
        return Verdict(False, False, None, "The command is empty.", [])
    try:
        cmds = [c for c in _Analyzer(0).source(command) if c.name or c.redirects]
    except SandboxParseError as exc:
        return Verdict(False, False, None, f"The command could not be parsed safely: {exc}.", [])
    except RecursionError:
        return Verdict(False, False, None, "The command is nested too deeply to check.", [])
    names = [c.name for c in cmds if c.name]
    if not names:
        return Verdict(False, False, None, "The line starts no command.", names)
    denied, sensitive = policy.denied_commands, policy.sensitive_commands
    for c in cmds:
        if c.dynamic:
            continue
        findings = _rule_findings(c)
        for rule, detail in findings:
            if rule in denied:
                label = c.name or "a redirection"
                return Verdict(
                    False,
                    False,
                    label,
                    f"'{label}' is not allowed: {detail} (rule {rule}).",
                    names,
                )
        entry = _first_match(denied, c) if c.name else None
        if entry is not None:
            return Verdict(
                False, False, c.name, f"'{c.name}' is denied by the node's policy ({entry}).", names
            )
    for c in cmds:
        if c.dynamic:
            return Verdict(
                False,
                False,
                c.name,
                f"'{c.name}' is computed when the command runs, so it cannot be checked.",
                names,
            )
    if policy.mode == "strict":
        for c in cmds:
            if c.name and _first_match(policy.allowed_commands, c, allow_list=True) is None:
                return Verdict(
                    False,
                    False,
                    c.name,
                    f"'{c.name}' is not in the node's allowed commands (strict mode).",
                    names,
                )
    for c in cmds:
        rules = [rule for rule, _ in _rule_findings(c) if rule in sensitive]
        entry = rules[0] if rules else (_first_match(sensitive, c) if c.name else None)
        if entry is not None:
            return Verdict(
                True, True, c.name, f"'{c.name}' needs approval ({entry} is sensitive).", names
            )
    return Verdict(True, False, None, "Allowed.", names)
