"""Models of the tools app, one module per aggregate."""

from tools.models.skill import Skill
from tools.models.tool_switch import ToolSwitch

__all__ = ["Skill", "ToolSwitch"]
