"""What differs between the Pythons the agent supports (CPython 3.9 and newer).

The agent runs on the Python a node's distribution ships (3.9 on RHEL 9, 3.10 on Ubuntu 22.04),
so it avoids 3.10+/3.11+ features; `mesh/tests/test_agent_pythons.py` guards that.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
from pathlib import Path

MIN_PYTHON = (3, 9)

# `asyncio.wait_for` raises asyncio.TimeoutError, which is the builtin TimeoutError only from
# Python 3.11 on: catch both.
TIMEOUTS: tuple[type[Exception], ...] = (TimeoutError, asyncio.TimeoutError)


def python_description() -> str:
    """The interpreter running the agent, e.g. "CPython 3.10.12"."""
    return f"{platform.python_implementation()} {platform.python_version()}"


def os_description(os_release: Path = Path("/etc/os-release")) -> str:
    """The operating system, e.g. "Ubuntu 22.04.4 LTS" or "macOS 14.5", else "Linux 6.8.0".

    Reads os-release itself: `platform.freedesktop_os_release` needs Python 3.10.
    """
    system = platform.system()
    if system == "Darwin":
        release = platform.mac_ver()[0]
        return f"macOS {release}".strip()
    if system == "Linux":
        fields: dict[str, str] = {}
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in os_release.read_text(encoding="utf-8").splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() in ("PRETTY_NAME", "NAME", "VERSION_ID"):
                    fields[key.strip()] = value.strip().strip("\"'")
        if fields.get("PRETTY_NAME"):
            return fields["PRETTY_NAME"]
        if fields.get("NAME"):
            return f"{fields['NAME']} {fields.get('VERSION_ID', '')}".strip()
    return f"{system} {platform.release()}".strip()
