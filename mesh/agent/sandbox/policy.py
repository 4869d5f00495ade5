"""Policies, the built-in argument rules, and `check_command` (deny wins)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..browser_actions import BrowserPolicy
from .commands import _Analyzer, _Command
from .lexer import NETWORK_NOTE, SandboxParseError
from .rules import moves_directory, network_refusal, rule_findings, strict_redirect_note

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
    #: The browser skill's domain policy; None: the defaults (stored only when set).
    browser: BrowserPolicy | None = None
    #: Interactive terminals: None means the mode's default (permissive yes, strict no).
    allow_terminals: bool | None = None

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
        unknown -= {"workspace_root", "browser", "allow_terminals"}
        if unknown:
            raise ValueError(f"unknown policy keys: {', '.join(sorted(unknown))}")
        terminals = data.get("allow_terminals")
        if terminals is not None and not isinstance(terminals, bool):
            raise ValueError("allow_terminals must be true, false or absent")
        browser = BrowserPolicy.from_dict(data["browser"]) if "browser" in data else None
        return cls(mode=mode, **lists, browser=browser, allow_terminals=terminals)

    @property
    def browser_policy(self) -> BrowserPolicy:
        return self.browser or BrowserPolicy()

    @property
    def terminals_allowed(self) -> bool:
        """Whether interactive terminals may open: strict mode only when explicitly allowed."""
        if self.allow_terminals is None:
            return self.mode == "permissive"
        return self.allow_terminals

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for storage and the wire)."""
        data: dict[str, Any] = {
            "mode": self.mode,
            "allowed_commands": list(self.allowed_commands),
            "denied_commands": list(self.denied_commands),
            "sensitive_commands": list(self.sensitive_commands),
            **({"browser": self.browser.to_dict()} if self.browser is not None else {}),
        }
        if self.allow_terminals is not None:
            data["allow_terminals"] = self.allow_terminals
        return data


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one command line."""

    allowed: bool
    sensitive: bool
    offending: str | None
    reason: str
    commands: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------- policy
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
    if not hit:
        return False
    if allow_list:  # allowing: the first arguments, exactly as written
        if len(cmd.args) < len(prefix):
            return False
        return all(fnmatch.fnmatchcase(a, p) for a, p in zip(cmd.args, prefix))
    return _in_order(prefix, cmd)


def _in_order(prefix: list[str], cmd: _Command) -> bool:
    """Denying or flagging: the entry's words appear in order among the arguments.

    Options may stand between them (`systemctl --no-block reboot` is `systemctl reboot`), and an
    argument computed at run time may be any word, so it counts as a match (fail closed).
    """
    dynamic = {i for i, w in enumerate(cmd.words) if w.dynamic} if cmd.words else set()
    want = 0
    for i, arg in enumerate(cmd.args):
        if want == len(prefix):
            break
        if i in dynamic or fnmatch.fnmatchcase(arg, prefix[want]):
            want += 1
    return want == len(prefix)


def _first_match(entries: Iterable[str], cmd: _Command, *, allow_list: bool = False) -> str | None:
    return next((e for e in entries if _matches(e, cmd, allow_list=allow_list)), None)


def parse_commands(command: str) -> list[str]:
    """The command names a line would start (wrappers looked through); raises SandboxParseError."""
    return [c.name for c in _Analyzer(0).source(command) if c.name]


def _refused(offending: str | None, reason: str, names: list[str]) -> Verdict:
    return Verdict(False, False, offending, reason, names)


def check_command(
    policy: Policy,
    command: str,
    workspace: str | os.PathLike[str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
) -> Verdict:
    """Check every command a shell line would start against the policy; deny wins.

    `workspace` is the node's workspace root (the node passes it, with the task's `cwd`): in
    strict mode redirections must resolve inside it, symlinks included. Without it (the hub),
    strict mode accepts only relative redirection targets that do not climb out with `..`.
    """
    if not isinstance(command, str) or not command.strip():
        return _refused(None, "The command is empty.", [])
    analyzer = _Analyzer(0)
    try:
        cmds = [c for c in analyzer.source(command) if c.name or c.redirects]
    except SandboxParseError as exc:
        return _refused(None, f"The command could not be parsed safely: {exc}.", [])
    except RecursionError:
        return _refused(None, "The command is nested too deeply to check.", [])
    names = [c.name for c in cmds if c.name]
    if not names and not analyzer.refusals:
        return _refused(None, "The line starts no command.", names)
    if analyzer.refusals:
        label, why = analyzer.refusals[0]
        return _refused(label, f"'{label}' is not allowed: {why}.", names)
    denied, sensitive = policy.denied_commands, policy.sensitive_commands
    moved = moves_directory(cmds)
    for c in cmds:
        if c.dynamic:
            continue
        for rule, detail in rule_findings(c, moved=moved):
            if rule in denied:
                label = c.name or "a redirection"
                return _refused(label, f"'{label}' is not allowed: {detail} (rule {rule}).", names)
        entry = _first_match(denied, c) if c.name else None
        if entry is not None:
            return _refused(c.name, f"'{c.name}' is denied by the node's policy ({entry}).", names)
    for c in cmds:
        if c.dynamic:
            return _refused(
                c.name,
                f"'{c.name}' is computed when the command runs, so it cannot be checked.",
                names,
            )
    if policy.mode == "strict":
        for c in cmds:
            if c.name and _first_match(policy.allowed_commands, c, allow_list=True) is None:
                return _refused(
                    c.name,
                    f"'{c.name}' is not in the node's allowed commands (strict mode).",
                    names,
                )
    if NETWORK_NOTE in analyzer.notes:
        return _refused(None, f"The command names {NETWORK_NOTE}, which is never allowed.", names)
    network = network_refusal(cmds)
    if network is not None:
        return _refused(None, f"Not allowed: {network} (/dev/tcp and /dev/udp are refused).", names)
    if policy.mode == "strict":
        root = Path(workspace) if workspace is not None else None
        note = analyzer.notes[0] if analyzer.notes else None
        note = note or strict_redirect_note(cmds, root, Path(cwd) if cwd is not None else None)
        if note is not None:
            return _refused(None, f"Strict mode does not accept {note}.", names)
    for c in cmds:
        rules = [rule for rule, _ in rule_findings(c, moved=moved) if rule in sensitive]
        entry = rules[0] if rules else (_first_match(sensitive, c) if c.name else None)
        if entry is not None:
            return Verdict(
                True, True, c.name, f"'{c.name}' needs approval ({entry} is sensitive).", names
            )
    return Verdict(True, False, None, "Allowed.", names)
