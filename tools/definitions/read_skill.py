"""read_skill: load a skill's instructions (or one of its files) when a task needs them."""

from __future__ import annotations

from cortex.errors import NotFound
from tools import selectors
from tools.base import Tool, ToolContext, ToolRefusal, ToolResult
from tools.registry import registry


@registry.register
class ReadSkill(Tool):
    name = "read_skill"
    description = (
        "Read a skill's full instructions. The system prompt lists skills by name only; call "
        "this with the skill name to load its SKILL.md, or with file_path to read one of its "
        "files such as 'scripts/collect.sh' or 'examples/report.md'."
    )
    parameters = {
        "type": "object",
        "properties": {
            "skill_name": {"type": "string", "minLength": 1, "maxLength": 64},
            "file_path": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "default": "SKILL.md",
                "description": "A path inside the skill folder; SKILL.md when omitted.",
            },
        },
        "required": ["skill_name"],
        "additionalProperties": False,
    }
    risk = "read"

    def run(
        self, *, context: ToolContext, skill_name: str, file_path: str = "SKILL.md"
    ) -> ToolResult:
        try:
            text = selectors.skill_read_file(
                user=context.user, name=skill_name, file_path=file_path
            )
        except ValueError as exc:
            raise ToolRefusal("path_outside_skill", str(exc), file_path=file_path) from exc
        except NotFound as exc:
            raise ToolRefusal("skill_not_found", exc.message, skill_name=skill_name) from exc
        return ToolResult(
            text=text, data={"skill_name": skill_name, "file_path": file_path}, task_ids=[]
        )
