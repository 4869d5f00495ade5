"""The node skills by name: the one list the hub and the agent share.

It lives in the agent package (no Django) because the agent ships alone and needs the same
names; the hub imports it from here (task kinds, skill switches, tools, the API).
"""

from __future__ import annotations

import enum


class Skill(str, enum.Enum):
    """A node skill; its value is the wire name (task kind, skill switch, capability key)."""

    SHELL = "shell"
    FILES = "files"
    BROWSER = "browser"

    def __str__(self) -> str:
        return self.value


#: Every skill name, in the order the hub shows them.
SKILLS: tuple[str, ...] = tuple(skill.value for skill in Skill)
