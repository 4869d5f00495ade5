"""The registry: loud duplicates, a fixed set after start-up, discovery and system checks."""

from __future__ import annotations

import sys
import textwrap

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from accounts.models import AuditEvent
from tools import registry as registry_module
from tools.base import Tool, ToolContext, ToolResult
from tools.checks import check_registry
from tools.registry import (
    AlreadyRegistered,
    NotRegistered,
    RegistryFrozen,
    ToolRegistry,
    autodiscover,
    registry,
)
from tools.services import tool_invoke


class Echo(Tool):
    name = "echo_test"
    description = "Echo the text back."
    parameters = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    }

    def run(self, *, context: ToolContext, text: str) -> ToolResult:
        return ToolResult(text=text, data={"echo": text}, task_ids=[])


def test_startup_discovered_the_shipped_tools_and_froze() -> None:
    assert [tool.name for tool in registry.all()] == [
        "browser",
        "mesh_files",
        "mesh_terminal",
        "mesh_wait_tasks",
        "read_skill",
        "workspace_files",
        "workspace_resync",
        "workspace_write",
    ]
    assert registry.frozen
    with pytest.raises(RegistryFrozen):
        registry.register(Echo)
    with pytest.raises(RegistryFrozen):
        registry.unregister("read_skill")
    assert "echo_test" not in registry


def test_register_and_unregister_fail_loudly() -> None:
    local = ToolRegistry()
    assert local.register(Echo) is Echo  # usable as a class decorator
    with pytest.raises(AlreadyRegistered):
        local.register(Echo())
    assert local.get("echo_test").name == "echo_test"
    local.unregister("echo_test")
    with pytest.raises(NotRegistered):
        local.unregister("echo_test")
    assert local.get("echo_test") is None
    with pytest.raises(TypeError):
        local.register(object)  # type: ignore[type-var]


def test_temporarily_registers_for_one_block_only() -> None:
    with registry.temporarily(Echo) as open_registry:
        assert open_registry is registry
        assert registry.get("echo_test").description == "Echo the text back."
    assert registry.get("echo_test") is None
    assert registry.frozen


PLUGIN_SOURCE = textwrap.dedent(
    '''
    """A tool added by dropping this one file into tools/definitions/."""

    from tools.base import Tool, ToolResult
    from tools.registry import registry


    @registry.register
    class Shout(Tool):
        name = "shout"
        description = "Repeat the text in capitals."
        parameters = {
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 100}},
            "required": ["text"],
            "additionalProperties": False,
        }
        risk = "read"

        def run(self, *, context, text):
            return ToolResult(text=text.upper(), data={"length": len(text)}, task_ids=[])
    '''
)


@pytest.mark.django_db
def test_dropping_one_file_adds_a_tool_and_removing_it_takes_it_away(
    tmp_path, monkeypatch, user, user_client
) -> None:
    (tmp_path / "shout.py").write_text(PLUGIN_SOURCE)
    import tools.definitions as definitions

    monkeypatch.setattr(definitions, "__path__", [*definitions.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "tools.definitions.shout", raising=False)
    context = ToolContext(user=user, chat_session_id=None, attached_nodes={})

    with registry.temporarily():
        autodiscover(registry)  # what ToolsConfig.ready() runs at start-up
        listed = user_client.get("/api/v1/tools/").json()["results"]
        shout = next(item for item in listed if item["name"] == "shout")
        assert shout == {
            "name": "shout",
            "description": "Repeat the text in capitals.",
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string", "maxLength": 100}},
                "required": ["text"],
                "additionalProperties": False,
            },
            "risk": "read",
            "skill": None,
            "capability": None,
        }
        result = tool_invoke(context=context, name="shout", arguments={"text": "hi there"})
        assert result.as_dict() == {
            "text": "HI THERE",
            "data": {"length": 8},
            "task_ids": [],
            "error_code": "",
        }
        assert check_registry(registry) == []

    sys.modules.pop("tools.definitions.shout", None)
    monkeypatch.setattr(definitions, "__path__", definitions.__path__[:-1])
    names = [item["name"] for item in user_client.get("/api/v1/tools/").json()["results"]]
    assert "shout" not in names
    gone = tool_invoke(context=context, name="shout", arguments={"text": "hi"})
    assert gone.error_code == "unknown_tool"
    assert AuditEvent.objects.filter(action="tool.refused", target_id="shout").count() == 1


def test_discovery_reports_a_duplicate_name_as_e001(tmp_path, monkeypatch) -> None:
    (tmp_path / "read_skill_again.py").write_text(
        PLUGIN_SOURCE.replace('name = "shout"', 'name = "read_skill"')
    )
    import tools.definitions as definitions

    monkeypatch.setattr(definitions, "__path__", [*definitions.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "tools.definitions.read_skill_again", raising=False)
    with registry.temporarily():
        autodiscover(registry)
        problems = check_registry(registry)
        assert [p.id for p in problems] == ["tools.E001"]
        assert "read_skill" in problems[0].msg
        with pytest.raises(SystemCheckError, match="tools.E001"):
            call_command("check")
    sys.modules.pop("tools.definitions.read_skill_again", None)
    assert registry.conflicts == []


def _tool(**attrs: object) -> type[Tool]:
    return type("Bad", (Echo,), attrs)


@pytest.mark.parametrize(
    ("attrs", "check_id"),
    [
        ({"parameters": {"type": "object", "properties": {"x": {"type": "nope"}}}}, "tools.E002"),
        ({"parameters": {"type": "object", "properties": {}}}, "tools.E002"),
        ({"parameters": {"type": "string"}}, "tools.E002"),
        ({"description": "  "}, "tools.E003"),
        ({"name": "has spaces"}, "tools.E004"),
        ({"risk": "dangerous"}, "tools.E005"),
        ({"skill": "teleport"}, "tools.E005"),
    ],
)
def test_system_checks_flag_bad_definitions(attrs: dict[str, object], check_id: str) -> None:
    local = ToolRegistry()
    local.register(_tool(**attrs))
    assert [p.id for p in check_registry(local)] == [check_id]


def test_check_command_fails_on_a_bad_tool_and_passes_on_the_shipped_ones() -> None:
    call_command("check")  # the shipped definitions are clean
    with registry.temporarily(_tool(description="")), pytest.raises(SystemCheckError):
        call_command("check")


def test_every_shipped_tool_passes_the_checks() -> None:
    assert check_registry(registry) == []
    assert registry_module.DEFINITIONS_PACKAGE == "tools.definitions"
