"""Agent configuration: one YAML file; relative paths are taken from its directory."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .skill_names import SKILLS

NODE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DEFAULT_ENV_ALLOW = ("LANG", "LC_ALL", "TZ")


class ConfigError(ValueError):
    """The configuration file is missing or invalid (the message says which key)."""


@dataclass
class AgentConfig:
    """Everything the agent needs to know before it reaches the hub."""

    hub_address: str
    node_id: str
    config_path: Path
    invite_token: str = ""
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_server_name: str = ""
    state_dir: Path = Path(".cortex-agent")
    credential_file: Path = Path(".cortex-agent/credential")
    workspace_root: Path = Path("workspace")
    skills: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(SKILLS, True))
    env_allow: tuple[str, ...] = DEFAULT_ENV_ALLOW
    env_set: dict[str, str] = field(default_factory=dict)
    shell_program: str = ""
    cancel_grace: tuple[float, float] = (7.5, 2.5)
    drain_timeout: float = 2.0
    max_read_bytes: int = 1024 * 1024
    max_write_bytes: int = 3 * 1024 * 1024
    reconnect_initial: float = 1.0
    reconnect_factor: float = 1.6
    reconnect_max: float = 120.0
    log_level: str = "INFO"
    #: A chat session's browser context closes after this many seconds without work.
    browser_idle_timeout: float = 600.0
    terminal_enabled: bool = True
    terminal_max_sessions: int = 8
    terminal_idle_timeout: float = 1800.0
    terminal_window_bytes: int = 1024 * 1024

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping")
    return value


def _number(value: Any, key: str, *, minimum: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a number") from exc
    if number < minimum:
        raise ConfigError(f"{key} must be at least {minimum}")
    return number


def _path(base: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty path")
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path)


def parse_config(data: Any, *, config_path: Path) -> AgentConfig:
    """Validate a parsed YAML document; raises ConfigError naming the bad key."""
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping")
    base = config_path.resolve().parent
    hub = _section(data, "hub")
    address = hub.get("address")
    if not isinstance(address, str) or ":" not in address:
        raise ConfigError("hub.address must be host:port")
    node_id = data.get("node_id")
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        raise ConfigError("node_id must be a slug (lowercase letters, digits, - and _)")
    tls = _section(hub, "tls")
    state_dir = _path(base, data.get("state_dir", ".cortex-agent"), "state_dir")
    credential = data.get("credential_file")
    skills_in = _section(data, "skills")
    skills = dict.fromkeys(SKILLS, True)
    for name, value in skills_in.items():
        if name not in SKILLS or not isinstance(value, bool):
            raise ConfigError(f"skills.{name} must be true or false (skills: {', '.join(SKILLS)})")
        skills[name] = value
    env = _section(data, "env")
    allow = env.get("allow", list(DEFAULT_ENV_ALLOW))
    if not isinstance(allow, list) or not all(
        isinstance(n, str) and ENV_NAME.match(n) for n in allow
    ):
        raise ConfigError("env.allow must be a list of variable names")
    env_set = env.get("set") or {}
    if not isinstance(env_set, dict) or not all(
        isinstance(k, str) and ENV_NAME.match(k) and isinstance(v, (str, int, float))
        for k, v in env_set.items()
    ):
        raise ConfigError("env.set must map variable names to strings")
    shell = _section(data, "shell")
    grace = shell.get("cancel_grace_s", [7.5, 2.5])
    if not isinstance(grace, list) or len(grace) != 2:
        raise ConfigError("shell.cancel_grace_s must be [seconds after SIGINT, after SIGTERM]")
    files = _section(data, "files")
    reconnect = _section(data, "reconnect")
    browser = _section(data, "browser")
    token = data.get("invite_token") or ""
    if not isinstance(token, str):
        raise ConfigError("invite_token must be a string")
    terminal = _section(data, "terminal")
    if not isinstance(terminal.get("enabled", True), bool):
        raise ConfigError("terminal.enabled must be true or false")
    level = str(data.get("log_level", "INFO")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level must be DEBUG, INFO, WARNING or ERROR")
    config = AgentConfig(
        hub_address=address,
        node_id=node_id,
        config_path=config_path,
        invite_token=token.strip(),
        tls=bool(tls.get("enabled", False)),
        tls_ca_file=_path(base, tls["ca_file"], "hub.tls.ca_file") if tls.get("ca_file") else None,
        tls_server_name=str(tls.get("server_name") or ""),
        state_dir=state_dir,
        credential_file=(
            _path(base, credential, "credential_file") if credential else state_dir / "credential"
        ),
        workspace_root=_path(base, data.get("workspace_root", "workspace"), "workspace_root"),
        skills=skills,
        env_allow=tuple(allow),
        env_set={k: str(v) for k, v in env_set.items()},
        shell_program=str(shell.get("program") or ""),
        cancel_grace=(
            _number(grace[0], "shell.cancel_grace_s[0]"),
            _number(grace[1], "shell.cancel_grace_s[1]"),
        ),
        drain_timeout=_number(shell.get("drain_timeout_s", 2.0), "shell.drain_timeout_s"),
        max_read_bytes=int(_number(files.get("max_read_bytes", 1 << 20), "files.max_read_bytes")),
        max_write_bytes=int(
            _number(files.get("max_write_bytes", 3 << 20), "files.max_write_bytes")
        ),
        reconnect_initial=_number(
            reconnect.get("initial_s", 1.0), "reconnect.initial_s", minimum=0.01
        ),
        reconnect_factor=_number(reconnect.get("factor", 1.6), "reconnect.factor", minimum=1.0),
        reconnect_max=_number(reconnect.get("max_s", 120.0), "reconnect.max_s", minimum=0.01),
        log_level=level,
        browser_idle_timeout=_number(
            browser.get("idle_timeout_s", 600.0), "browser.idle_timeout_s", minimum=1.0
        ),
        terminal_enabled=terminal.get("enabled", True),
        terminal_max_sessions=int(
            _number(terminal.get("max_sessions", 8), "terminal.max_sessions", minimum=1)
        ),
        terminal_idle_timeout=_number(
            terminal.get("idle_timeout_s", 1800.0), "terminal.idle_timeout_s", minimum=1.0
        ),
        terminal_window_bytes=int(
            _number(
                terminal.get("window_bytes", 1024 * 1024), "terminal.window_bytes", minimum=4096
            )
        ),
    )
    if config.reconnect_max < config.reconnect_initial:
        raise ConfigError("reconnect.max_s must be at least reconnect.initial_s")
    return config


def load_config(path: str | os.PathLike[str]) -> AgentConfig:
    """Read and validate the YAML configuration file."""
    config_path = Path(path)
    try:
        data = yaml.safe_load(config_path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {config_path} not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {config_path} is not valid YAML: {exc}") from exc
    return parse_config(data, config_path=config_path)
