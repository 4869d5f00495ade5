"""System checks that stop start-up on a bad tool definition."""

from __future__ import annotations

import re
from typing import Any

from django.core import checks
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tools.base import NODE_SKILLS, RISKS
from tools.registry import ToolRegistry, registry

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what LLM function-calling APIs accept


def check_registry(target: ToolRegistry) -> list[checks.CheckMessage]:
    """Every problem of the tools in `target`, as Django check errors."""
    problems: list[checks.CheckMessage] = [
        checks.Error(f"Duplicate tool name: {conflict}", id="tools.E001")
        for conflict in target.conflicts
    ]
    for tool in target.all():
        obj = type(tool)
        schema: Any = tool.parameters
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            problems.append(
                checks.Error(
                    f"Tool '{tool.name}' has an invalid parameter schema: {exc.message}",
                    obj=obj,
                    id="tools.E002",
                )
            )
        else:
            if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
                problems.append(
                    checks.Error(
                        f"Tool '{tool.name}': parameters must be an object schema with "
                        '"additionalProperties": false.',
                        obj=obj,
                        id="tools.E002",
                    )
                )
        if not (tool.description or "").strip():
            problems.append(
                checks.Error(f"Tool '{tool.name}' has no description.", obj=obj, id="tools.E003")
            )
        if not NAME_PATTERN.match(tool.name or ""):
            problems.append(
                checks.Error(
                    f"Tool name '{tool.name}' must match {NAME_PATTERN.pattern}.",
                    obj=obj,
                    id="tools.E004",
                )
            )
        if tool.risk not in RISKS or (tool.skill is not None and tool.skill not in NODE_SKILLS):
            problems.append(
                checks.Error(
                    f"Tool '{tool.name}': risk must be one of {RISKS} and skill one of "
                    f"{NODE_SKILLS} or None.",
                    obj=obj,
                    id="tools.E005",
                )
            )
    return problems


@checks.register("tools")
def check_tools(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """tools.E001 duplicate names, E002 bad schema, E003 no description, E004/E005 bad fields."""
    return check_registry(registry)
