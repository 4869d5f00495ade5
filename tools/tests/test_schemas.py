"""Every shipped tool's schema, with valid and invalid arguments."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuditEvent
from mesh.models import Task
from tools.base import ToolContext
from tools.registry import registry
from tools.services import tool_invoke
from tools.services.invoke import _argument_errors

TASK_ID = "6f1c1a7e-0000-4000-8000-000000000001"

VALID: dict[str, list[dict[str, Any]]] = {
    "mesh_terminal": [
        {"command": "ls", "node_id": "dev"},
        {"command": "ls", "node_ids": ["dev", "gpu"], "timeout": 5, "background": True},
        {"command": "sleep 100", "node_id": "dev", "timeout": 86400},
    ],
    "mesh_wait_tasks": [
        {"task_ids": [TASK_ID]},
        {"task_ids": [TASK_ID], "timeout": 0},
    ],
    "mesh_files": [
        {"node_id": "dev", "action": "list", "path": "."},
        {"node_id": "dev", "action": "stat", "path": "a.txt"},
        {"node_id": "dev", "action": "read", "path": "a.txt"},
        {"node_id": "dev", "action": "write", "path": "a.txt", "content": ""},
        {
            "node_id": "dev",
            "action": "write",
            "path": "a.bin",
            "content": "AA==",
            "encoding": "base64",
        },
        {"node_id": "dev", "action": "delete", "path": "a.txt"},
        {"node_id": "dev", "action": "delete", "path": "build", "recursive": True},
        {"node_id": "dev", "action": "move", "path": "a.txt", "to_path": "b.txt"},
        {"node_id": "dev", "action": "copy", "path": "a.txt", "to_path": "b.txt", "timeout": 60},
    ],
    "browser": [
        {"node_id": "web", "action": "navigate", "url": "https://example.com/"},
        {"node_id": "web", "action": "screenshot"},
        {"node_id": "web", "action": "text", "timeout": 10},
        {"node_id": "web", "action": "text", "selector": "#result"},
        {"node_id": "web", "action": "click", "ref": "e12"},
        {"node_id": "web", "action": "type", "selector": "#q", "text": "x", "submit": True},
        {"node_id": "web", "action": "press", "key": "Enter"},
        {"node_id": "web", "action": "select", "ref": "e3", "value": "green"},
        {"node_id": "web", "action": "scroll", "direction": "up", "amount": 300},
        {"node_id": "web", "action": "wait", "text": "Done"},
        {"node_id": "web", "action": "snapshot", "tab": 2},
        {"node_id": "web", "action": "evaluate", "script": "() => 1"},
        {"node_id": "web", "action": "tab_new"},
    ],
    "read_skill": [
        {"skill_name": "node-diagnostics"},
        {"skill_name": "node-diagnostics", "file_path": "scripts/collect.sh"},
    ],
    "workspace_files": [
        {"action": "list"},
        {"action": "read", "path": "src/app.py"},
        {"action": "search", "query": "TODO", "path": "src"},
        {"action": "status"},
    ],
    "workspace_write": [
        {"action": "write", "path": "a.txt", "content": "hi"},
        {"action": "write", "path": "b.bin", "content": "AAE=", "encoding": "base64"},
        {"action": "delete", "path": "a.txt"},
    ],
    "workspace_resync": [{}, {"node_id": "dev", "resolve": "promote", "paths": ["a.txt"]}],
}

INVALID: dict[str, list[tuple[Any, str]]] = {
    "mesh_terminal": [
        ({"node_id": "dev"}, "'command' is a required property"),
        ({"command": "ls"}, "give exactly one of node_id and node_ids"),
        ({"command": "ls", "node_id": "dev", "node_ids": ["dev"]}, "exactly one of"),
        ({"command": "", "node_id": "dev"}, "should be non-empty"),
        ({"command": "ls", "node_id": "dev", "timeout": 0}, "less than or equal to the minimum"),
        ({"command": "ls", "node_id": "dev", "timeout": "30"}, "'30' is not of type 'number'"),
        ({"command": "ls", "node_ids": []}, "should be non-empty"),
        ({"command": "ls", "node_ids": ["a", "a"]}, "has non-unique elements"),
        ({"command": "ls", "node_id": "dev", "background": "yes"}, "is not of type 'boolean'"),
        ({"command": "ls", "node_id": "dev", "no_abort": True}, "'no_abort' was unexpected"),
    ],
    "mesh_wait_tasks": [
        ({}, "'task_ids' is a required property"),
        ({"task_ids": TASK_ID}, "is not of type 'array'"),
        ({"task_ids": [TASK_ID], "timeout": -1}, "less than the minimum of 0"),
        ({"task_ids": [TASK_ID], "task_map": {}}, "'task_map' was unexpected"),
    ],
    "mesh_files": [
        ({"node_id": "dev", "action": "chmod", "path": "a"}, "is not one of"),
        ({"node_id": "dev", "action": "read"}, "'path' is a required property"),
        ({"action": "read", "path": "a"}, "'node_id' is a required property"),
        ({"node_id": "dev", "action": "move", "path": "a"}, "to_path is required for move"),
        ({"node_id": "dev", "action": "write", "path": "a"}, "content is required for write"),
        ({"node_id": "dev", "action": "read", "path": "a", "content": "x"}, "only for write"),
        ({"node_id": "dev", "action": "read", "path": "a", "to_path": "b"}, "only for move"),
        ({"node_id": "dev", "action": "read", "path": "a", "encoding": "latin1"}, "is not one of"),
        ({"node_id": "dev", "action": "list", "path": ".", "recursive": True}, "only for delete"),
        ({"node_id": "dev", "action": "list", "path": ".", "depth": 2}, "unexpected"),
    ],
    "browser": [
        ({"node_id": "web", "action": "navigate"}, "navigate needs 'url'"),
        ({"node_id": "web", "action": "navigate", "url": "file:///etc/passwd"}, "does not match"),
        ({"node_id": "web", "action": "text", "url": "https://x.org"}, "'url' is not an argument"),
        ({"node_id": "web", "action": "click"}, "click needs exactly one of ref or selector"),
        ({"node_id": "web", "action": "click", "ref": "e1", "selector": "#a"}, "exactly one of"),
        ({"node_id": "web", "action": "text", "script": "1"}, "'script' is not an argument"),
        ({"node_id": "web", "action": "format"}, "is not one of"),
        ({"node_id": "web", "action": "click", "ref": "#a"}, "does not match"),
        ({"node_id": "web", "action": "wait"}, "wait needs a selector, a ref or a text"),
        ({"node_id": "web", "action": "screenshot", "session": "7"}, "'session' was unexpected"),
        ({"node_id": "web", "action": "evaluate", "confirmed": True}, "was unexpected"),
    ],
    "read_skill": [
        ({}, "'skill_name' is a required property"),
        ({"skill_name": ""}, "should be non-empty"),
        ({"skill_name": 3}, "is not of type 'string'"),
        ({"skill_name": "x", "artifact": "y"}, "'artifact' was unexpected"),
    ],
    "workspace_files": [
        ({}, "'action' is a required property"),
        ({"action": "grep"}, "is not one of"),
        ({"action": "search", "query": ""}, "should be non-empty"),
    ],
    "workspace_write": [
        ({"action": "write"}, "'path' is a required property"),
        ({"action": "move", "path": "a"}, "is not one of"),
        ({"action": "write", "path": ""}, "should be non-empty"),
    ],
    "workspace_resync": [({"resolve": "merge"}, "is not one of")],
}


def test_every_shipped_tool_has_cases() -> None:
    assert sorted(VALID) == sorted(INVALID) == sorted(t.name for t in registry.all())


@pytest.mark.parametrize(
    ("name", "arguments"), [(name, args) for name, cases in VALID.items() for args in cases]
)
def test_valid_arguments_pass_validation(name: str, arguments: dict[str, Any]) -> None:
    tool = registry.get(name)
    assert tool is not None
    assert _argument_errors(tool, arguments) == []
    assert tool.check_arguments(arguments) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [(name, args, msg) for name, cases in INVALID.items() for args, msg in cases],
)
def test_invalid_arguments_are_refused_and_audited(
    context: ToolContext, name: str, arguments: Any, message: str
) -> None:
    result = tool_invoke(context=context, name=name, arguments=arguments)
    assert result.error_code == "invalid_arguments"
    assert message in result.text
    event = AuditEvent.objects.get(action="tool.refused")
    assert (event.target_id, event.details["reason"]) == (name, "invalid_arguments")
    assert not Task.objects.exists()
