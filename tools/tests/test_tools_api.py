"""GET /api/v1/tools/ and the admin tool switches."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from tools.base import ToolContext
from tools.models import ToolSwitch
from tools.selectors import tools_for_context
from tools.services import tool_switch_create

pytestmark = pytest.mark.django_db

#: The shared-workspace tools (hub tools: no node skill needed).
WS = ["workspace_files", "workspace_resync", "workspace_write"]


def names(client) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/tools/")
    assert response.status_code == 200
    return [item["name"] for item in response.json()["results"]]


def test_without_nodes_only_hub_tools_are_listed(user_client) -> None:  # type: ignore[no-untyped-def]
    assert names(user_client) == ["mesh_wait_tasks", "read_skill", *WS]


def test_node_skills_gate_node_tools(user_client, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("dev", skill_config={"files": False})
    assert names(user_client) == ["mesh_terminal", "mesh_wait_tasks", "read_skill", *WS]
    # As a real agent reports them: every skill it knows, true or false.
    every = {"shell": True, "files": True, "browser": True}
    make_node("web", skill_config={"browser": True}, capabilities=every)
    assert names(user_client) == [
        "browser",
        "mesh_files",
        "mesh_terminal",
        "mesh_wait_tasks",
        "read_skill",
        *WS,
    ]


def test_listing_shape(user_client, dev_node) -> None:  # type: ignore[no-untyped-def]
    item = next(
        i for i in user_client.get("/api/v1/tools/").json()["results"] if i["name"] == "mesh_files"
    )
    assert (item["risk"], item["skill"], item["capability"]) == ("write", "files", None)
    assert item["parameters"]["additionalProperties"] is False
    assert item["description"].startswith("Work with files in the session's workspace")


def test_switches_hide_tools_for_everyone_or_a_group(  # type: ignore[no-untyped-def]
    user, team, staff_user, user_client, staff_client, dev_node
) -> None:
    from django.contrib.auth.models import Group

    tool_switch_create(actor=staff_user, tool_name="read_skill")
    other = Group.objects.create(name="other")
    tool_switch_create(actor=staff_user, tool_name="mesh_files", group_id=other.pk)
    assert names(user_client) == ["mesh_files", "mesh_terminal", "mesh_wait_tasks", *WS]
    assert "read_skill" not in names(staff_client)
    tool_switch_create(actor=staff_user, tool_name="mesh_files", group_id=team.pk)
    assert names(user_client) == ["mesh_terminal", "mesh_wait_tasks", *WS]


def test_tools_for_context_follows_the_attached_nodes(user, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("dev", skill_config={"files": False})
    make_node("web", skill_config={"browser": True}, capabilities={"browser": True})
    dev_only = ToolContext(user=user, chat_session_id=1, attached_nodes={"dev": ""})
    assert [t.name for t in tools_for_context(context=dev_only)] == [
        "mesh_terminal",
        "mesh_wait_tasks",
        "read_skill",
        *WS,
    ]
    nothing = ToolContext(user=user, chat_session_id=1, attached_nodes={})
    assert [t.name for t in tools_for_context(context=nothing)] == [
        "mesh_wait_tasks",
        "read_skill",
        *WS,
    ]


def test_tools_list_query_count(user_client, dev_node, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_max_num_queries(3):
        user_client.get("/api/v1/tools/")


def test_anonymous_is_refused(anon_client) -> None:  # type: ignore[no-untyped-def]
    assert anon_client.get("/api/v1/tools/").status_code in (401, 403)


# -- admin switches ------------------------------------------------------------------------


def test_admin_switches_a_tool_off_and_on(staff_client, staff_user, team) -> None:  # type: ignore[no-untyped-def]
    created = staff_client.post(
        "/api/v1/admin/tool-switches/",
        {"tool_name": "mesh_terminal", "group": team.pk, "reason": "audit week"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    switch = ToolSwitch.objects.get()
    assert body | {"created_at": None} == {
        "id": switch.pk,
        "tool_name": "mesh_terminal",
        "group": team.pk,
        "group_name": "team",
        "reason": "audit week",
        "created_by": staff_user.pk,
        "created_at": None,
    }
    listed = staff_client.get("/api/v1/admin/tool-switches/").json()
    assert [s["id"] for s in listed["results"]] == [switch.pk]
    again = staff_client.post(
        "/api/v1/admin/tool-switches/",
        {"tool_name": "mesh_terminal", "group": team.pk},
        format="json",
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "tool_switch_exists")

    assert staff_client.delete(f"/api/v1/admin/tool-switches/{switch.pk}/").status_code == 204
    assert not ToolSwitch.objects.exists()
    assert [e.action for e in AuditEvent.objects.order_by("id")] == [
        "tool.switched_off",
        "tool.switched_on",
    ]


def test_admin_switch_for_everyone_and_bad_input(staff_client) -> None:  # type: ignore[no-untyped-def]
    everyone = staff_client.post(
        "/api/v1/admin/tool-switches/", {"tool_name": "browser"}, format="json"
    )
    assert (everyone.status_code, everyone.json()["group"]) == (201, None)
    unknown = staff_client.post(
        "/api/v1/admin/tool-switches/", {"tool_name": "nope"}, format="json"
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "unknown_tool")
    no_group = staff_client.post(
        "/api/v1/admin/tool-switches/", {"tool_name": "read_skill", "group": 999}, format="json"
    )
    assert no_group.status_code == 400
    assert ToolSwitch.objects.count() == 1


def test_switches_are_for_admins_only(user_client, staff_user) -> None:  # type: ignore[no-untyped-def]
    switch = tool_switch_create(actor=staff_user, tool_name="browser")
    assert user_client.get("/api/v1/admin/tool-switches/").status_code == 403
    create = user_client.post(
        "/api/v1/admin/tool-switches/", {"tool_name": "read_skill"}, format="json"
    )
    assert create.status_code == 403
    assert user_client.delete(f"/api/v1/admin/tool-switches/{switch.pk}/").status_code == 403
    assert ToolSwitch.objects.count() == 1
