"""Write services of the tools app."""

from tools.services.invoke import tool_invoke
from tools.services.skills import SkillNameTaken, skill_create, skill_delete, skill_update
from tools.services.switches import (
    ToolSwitchExists,
    UnknownTool,
    tool_switch_create,
    tool_switch_delete,
)

__all__ = [
    "SkillNameTaken",
    "ToolSwitchExists",
    "UnknownTool",
    "skill_create",
    "skill_delete",
    "skill_update",
    "tool_invoke",
    "tool_switch_create",
    "tool_switch_delete",
]
