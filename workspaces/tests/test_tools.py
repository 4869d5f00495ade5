"""The AI's workspace tools through `tool_invoke`: reads from the mirror, writes, search,
status, resync, and the session folder as the working directory of node tools."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuditEvent
from sessions_app.models import ChatSession
from tools.base import ToolContext
from tools.services import tool_invoke
from workspaces.models import WorkspaceFile
from workspaces.services import workspace_configure

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(user) -> ChatSession:
    return ChatSession.objects.create(owner=user, title="ws")


@pytest.fixture
def context(user, session) -> ToolContext:
    workspace_configure(actor=user, session=session, source="hub")
    return ToolContext(user=user, chat_session_id=session.pk, attached_nodes={})


def _call(context: ToolContext, name: str, **arguments: Any) -> Any:
    return tool_invoke(context=context, name=name, arguments=arguments)


def test_write_read_list_search_delete(context) -> None:
    wrote = _call(
        context,
        "workspace_write",
        action="write",
        path="src/main.py",
        content="x = 1\nprint('needle')\n",
    )
    assert wrote.ok, wrote.text
    assert WorkspaceFile.objects.filter(path="src/main.py", size=22).exists()
    assert AuditEvent.objects.filter(action="workspace.write", source="tool").count() == 1

    read = _call(context, "workspace_files", action="read", path="src/main.py")
    assert (read.ok, read.text) == (True, "x = 1\nprint('needle')\n")
    listed = _call(context, "workspace_files", action="list", path="src")
    assert listed.text == "src/main.py  (22 bytes)"
    found = _call(context, "workspace_files", action="search", query="NEEDLE", path="src")
    assert found.text == "src/main.py:2: print('needle')"

    gone = _call(context, "workspace_write", action="delete", path="src")
    assert gone.ok and gone.data == {"files": 1}
    missing = _call(context, "workspace_files", action="read", path="src/main.py")
    assert missing.error_code == "not_found"


def test_paths_outside_are_refused(context) -> None:
    for path in ("../x", "/etc/passwd", "a/../../x"):
        result = _call(context, "workspace_write", action="write", path=path, content="x")
        assert result.error_code == "path_outside_workspace", path
        result = _call(context, "workspace_files", action="read", path=path)
        assert result.error_code == "path_outside_workspace", path
    assert not WorkspaceFile.objects.exclude(path__startswith=".skills/").exists()


def test_status_and_resync(context) -> None:
    status = _call(context, "workspace_files", action="status")
    assert status.ok and status.data == {"source": "hub", "nodes": []}
    assert _call(context, "workspace_resync").ok
    assert AuditEvent.objects.filter(action="workspace.resync").count() == 1


def test_without_a_workspace_the_tools_refuse(user) -> None:
    bare = ChatSession.objects.create(owner=user)
    context = ToolContext(user=user, chat_session_id=bare.pk, attached_nodes={})
    assert _call(context, "workspace_files", action="list").error_code == "workspace_disabled"


def test_another_users_session_is_refused(context, make_user) -> None:
    other = ToolContext(
        user=make_user("eve@example.com"),
        chat_session_id=context.chat_session_id,
        attached_nodes={},
    )
    result = _call(other, "workspace_files", action="read", path="a.txt")
    assert result.error_code == "not_found"


def test_node_tools_start_in_the_session_folder(user, session, staff_user) -> None:
    from django.contrib.auth.models import Group

    from mesh import services as mesh_services
    from sessions_app.models import SessionNode
    from sessions_app.services.turn_prompt import tool_context
    from sessions_app.services.turn_state import TurnState

    node, _ = mesh_services.node_create(actor=staff_user, node_id="box", display_name="Box")
    group = Group.objects.create(name="devs")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=node, group=group)
    SessionNode.objects.create(session=session, node=node, working_dir="elsewhere")
    state = TurnState.__new__(TurnState)
    state.user, state.session_id = user, session.pk
    state.message_id = None  # type: ignore[assignment]  # no message in this check
    assert tool_context(state=state).attached_nodes == {"box": "elsewhere"}
    workspace_configure(actor=user, session=session, source="hub")
    assert tool_context(state=state).attached_nodes == {"box": f"sessions/{session.pk}"}
    workspace_configure(actor=user, session=session, source="node", node_id="box", path="code")
    assert tool_context(state=state).attached_nodes == {"box": "code"}
