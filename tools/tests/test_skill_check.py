"""One skill check, one answer: the REST dispatch, the chat tools, the tool list and the node
list all ask `mesh.selectors.node_skill_refusal`, which fails closed on a capability the node
did not report as `true`."""

from __future__ import annotations

from typing import Any

import pytest

from mesh import selectors as mesh_selectors
from mesh import services as mesh_services
from mesh.api.serializers import NodeUserOutput
from mesh.models import Node, Task
from tools.base import ToolContext
from tools.selectors import tools_for_user
from tools.services import tool_invoke

ALL_ON = {"shell": True, "files": True, "browser": True}
FILES = {"node_id": "half", "action": "read", "path": "a.txt", "timeout": 0.1}
BROWSE = {"node_id": "half", "action": "navigate", "url": "https://example.com/", "timeout": 0.1}


def _context(user: Any) -> ToolContext:
    return ToolContext(
        user=user, chat_session_id=41, attached_nodes={"half": ""}, tool_call_id="call_1"
    )


@pytest.mark.parametrize(
    "reported",
    [
        {"shell": True, "browser": True},  # files not mentioned
        {"shell": True, "browser": True, "files": False},
        {"shell": True, "browser": True, "files": "yes"},
    ],
)
def test_a_capability_not_reported_true_refuses_everywhere(user, make_node, reported) -> None:  # type: ignore[no-untyped-def]
    node = make_node("half", skill_config=ALL_ON, capabilities=reported)
    Node.objects.filter(pk=node.pk).update(capabilities=reported)  # as stored, not coerced
    node.refresh_from_db()

    assert mesh_selectors.node_skill_refusal(node=node, skill="files") == "capability_missing"
    with pytest.raises(mesh_services.CapabilityMissing):
        mesh_services.task_dispatch(actor=user, node=node, kind="files", payload={"action": "list"})
    result = tool_invoke(context=_context(user), name="mesh_files", arguments=FILES)
    assert result.error_code == "capability_missing"
    assert Task.objects.count() == 0
    assert "mesh_files" not in [tool.name for tool in tools_for_user(user=user)]
    assert NodeUserOutput(node).data["available_skills"] == ["shell", "browser"]
    assert not mesh_selectors.node_usable_for(user=user, node=node, skill="files")
    assert mesh_selectors.node_usable_for(user=user, node=node, skill="browser")

    # The skill the node did report is taken on both paths.
    result = tool_invoke(context=_context(user), name="browser", arguments=BROWSE)
    assert result.error_code == ""
    assert Task.objects.get().kind == "browser"


def test_a_node_that_never_reported_queues_and_its_agent_decides(user, make_node) -> None:  # type: ignore[no-untyped-def]
    """Shell and files queue for a node that has not said hello yet (its agent checks); the
    browser needs software most machines lack, so it waits for a reported browser."""
    node = make_node("half", skill_config=ALL_ON)
    assert node.capabilities == {}
    for skill in ("shell", "files"):
        assert mesh_selectors.node_skill_refusal(node=node, skill=skill) is None
    assert mesh_selectors.node_skill_refusal(node=node, skill="browser") == "capability_missing"
    assert NodeUserOutput(node).data["available_skills"] == ["shell", "files"]
    result = tool_invoke(context=_context(user), name="browser", arguments=BROWSE)
    assert result.error_code == "capability_missing"
    result = tool_invoke(context=_context(user), name="mesh_files", arguments=FILES)
    assert Task.objects.get().kind == "files"
