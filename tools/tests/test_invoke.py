"""tool_invoke: refusals are audited results that dispatch nothing; valid calls queue tasks."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuditEvent
from mesh import services as mesh_services
from mesh.models import Task
from tools.base import ToolContext
from tools.services import tool_invoke, tool_switch_create

pytestmark = pytest.mark.django_db


def refused(result: Any, code: str, *, tool: str) -> AuditEvent:
    """The result carries `code`, one tool.refused audit row says why, and no task exists."""
    assert result.error_code == code
    assert result.task_ids == []
    assert result.text.startswith(f"Error ({code}): ")
    events = list(AuditEvent.objects.filter(action="tool.refused"))
    assert len(events) == 1
    event = events[0]
    assert (event.target_type, event.target_id, event.source) == ("tool", tool, "tool")
    assert event.details["reason"] == code
    assert event.details["chat_session_id"] == 41
    assert event.details["tool_call_id"] == "call_1"
    assert not Task.objects.exists()
    assert not AuditEvent.objects.filter(action="task.dispatch").exists()
    return event


def test_unknown_tool(context: ToolContext) -> None:
    result = tool_invoke(context=context, name="rm_rf", arguments={})
    refused(result, "unknown_tool", tool="rm_rf")


def test_extra_arguments_are_refused(context: ToolContext) -> None:
    result = tool_invoke(
        context=context,
        name="mesh_terminal",
        arguments={"command": "id", "node_id": "dev", "user": "root"},
    )
    event = refused(result, "invalid_arguments", tool="mesh_terminal")
    assert "Additional properties are not allowed ('user' was unexpected)" in result.text
    assert event.details["arguments"] == ["command", "node_id", "user"]


def test_arguments_must_be_an_object(context: ToolContext) -> None:
    result = tool_invoke(context=context, name="mesh_terminal", arguments=["id"])  # type: ignore[arg-type]
    refused(result, "invalid_arguments", tool="mesh_terminal")


def test_node_not_attached(context: ToolContext, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("prod")  # the user may use it, but it is not attached to this session
    result = tool_invoke(
        context=context, name="mesh_terminal", arguments={"command": "id", "node_id": "prod"}
    )
    event = refused(result, "node_not_attached", tool="mesh_terminal")
    assert event.details["node_id"] == "prod"


def test_node_attached_but_not_granted(user, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("secret", grant=False)
    context = ToolContext(
        user=user, chat_session_id=41, attached_nodes={"secret": ""}, tool_call_id="call_1"
    )
    result = tool_invoke(
        context=context, name="mesh_terminal", arguments={"command": "id", "node_id": "secret"}
    )
    refused(result, "node_not_usable", tool="mesh_terminal")


def test_one_bad_node_among_several_refuses_the_whole_call(context: ToolContext) -> None:
    result = tool_invoke(
        context=context,
        name="mesh_terminal",
        arguments={"command": "id", "node_ids": ["dev", "elsewhere"]},
    )
    refused(result, "node_not_attached", tool="mesh_terminal")


def test_skill_disabled_on_the_node(user, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("nofiles", skill_config={"files": False})
    context = ToolContext(
        user=user, chat_session_id=41, attached_nodes={"nofiles": ""}, tool_call_id="call_1"
    )
    result = tool_invoke(
        context=context,
        name="mesh_files",
        arguments={"node_id": "nofiles", "action": "list", "path": "."},
    )
    event = refused(result, "skill_disabled", tool="mesh_files")
    assert event.details["node_id"] == "nofiles"


def test_browser_needs_the_capability(user, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("web", skill_config={"browser": True}, capabilities={"shell": True})
    context = ToolContext(
        user=user, chat_session_id=41, attached_nodes={"web": ""}, tool_call_id="call_1"
    )
    result = tool_invoke(
        context=context,
        name="browser",
        arguments={"node_id": "web", "action": "navigate", "url": "https://example.com/"},
    )
    refused(result, "capability_missing", tool="browser")


@pytest.mark.parametrize(
    "arguments",
    [
        {"node_id": "dev", "action": "read", "path": "../../etc/passwd"},
        {"node_id": "dev", "action": "read", "path": "/etc/passwd"},
        {"node_id": "dev", "action": "read", "path": "/srv/work-evil/x"},
        {"node_id": "dev", "action": "copy", "path": "a.txt", "to_path": "../b.txt"},
    ],
)
def test_path_outside_workspace(context: ToolContext, arguments: dict[str, Any]) -> None:
    result = tool_invoke(context=context, name="mesh_files", arguments=arguments)
    refused(result, "path_outside_workspace", tool="mesh_files")


def test_path_outside_workspace_without_a_working_dir(user, dev_node) -> None:  # type: ignore[no-untyped-def]
    context = ToolContext(
        user=user, chat_session_id=41, attached_nodes={"dev": ""}, tool_call_id="call_1"
    )
    result = tool_invoke(
        context=context,
        name="mesh_files",
        arguments={"node_id": "dev", "action": "stat", "path": "a/../../x"},
    )
    refused(result, "path_outside_workspace", tool="mesh_files")


def test_tool_switched_off_for_everyone(context: ToolContext, staff_user) -> None:  # type: ignore[no-untyped-def]
    tool_switch_create(actor=staff_user, tool_name="mesh_terminal", reason="incident")
    switched = AuditEvent.objects.get(action="tool.switched_off")
    assert (switched.target_id, switched.details) == (
        "mesh_terminal",
        {"group": None, "reason": "incident"},
    )
    result = tool_invoke(
        context=context, name="mesh_terminal", arguments={"command": "id", "node_id": "dev"}
    )
    assert result.error_code == "tool_disabled"
    assert AuditEvent.objects.filter(action="tool.refused").get().details["reason"] == (
        "tool_disabled"
    )
    assert not Task.objects.exists()


def test_tool_switched_off_for_a_group(context: ToolContext, staff_user, team) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    other = Group.objects.create(name="other")
    tool_switch_create(actor=staff_user, tool_name="read_skill", group_id=other.pk)
    allowed = tool_invoke(
        context=context, name="read_skill", arguments={"skill_name": "node-diagnostics"}
    )
    assert allowed.error_code == ""
    tool_switch_create(actor=staff_user, tool_name="read_skill", group_id=team.pk)
    result = tool_invoke(
        context=context, name="read_skill", arguments={"skill_name": "node-diagnostics"}
    )
    assert result.error_code == "tool_disabled"


def test_sandbox_policy_refusal_from_mesh(context: ToolContext, staff_user, dev_node) -> None:  # type: ignore[no-untyped-def]
    mesh_services.node_update(
        actor=staff_user,
        node=dev_node,
        data={"sandbox_policy": {"mode": "permissive", "denied_commands": ["reboot"]}},
    )
    result = tool_invoke(
        context=context,
        name="mesh_terminal",
        arguments={"command": "echo ok && reboot", "node_id": "dev"},
    )
    refused(result, "command_not_allowed", tool="mesh_terminal")


def test_wait_tasks_refuses_a_task_of_another_session_node(  # type: ignore[no-untyped-def]
    context: ToolContext, user, make_node
) -> None:
    other = make_node("other")
    task = mesh_services.task_dispatch(
        actor=user, node=other, kind="shell", payload={"command": "id"}
    )
    result = tool_invoke(
        context=context, name="mesh_wait_tasks", arguments={"task_ids": [str(task.pk)]}
    )
    assert result.error_code == "task_not_found"
    assert AuditEvent.objects.filter(action="tool.refused").get().details["reason"] == (
        "task_not_found"
    )


# -- what a valid call dispatches ---------------------------------------------------------


def test_mesh_terminal_background_queues_the_exact_task(context: ToolContext, user) -> None:  # type: ignore[no-untyped-def]
    result = tool_invoke(
        context=context,
        name="mesh_terminal",
        arguments={"command": "make test", "node_id": "dev", "background": True, "timeout": 600},
    )
    task = Task.objects.get()
    assert result.error_code == ""
    assert result.task_ids == [str(task.pk)]
    assert result.data == {
        "tasks": [{"task_id": str(task.pk), "node_id": "dev", "status": "queued"}]
    }
    assert (task.kind, task.payload, task.timeout) == (
        "shell",
        {"command": "make test", "cwd": "/srv/work"},
        600.0,
    )
    assert (task.chat_session_id, task.tool_call_id, task.requested_by) == (41, "call_1", user)
    dispatch = AuditEvent.objects.get(action="task.dispatch")
    assert (dispatch.source, dispatch.details["command"]) == ("tool", "make test")
    assert not AuditEvent.objects.filter(action="tool.refused").exists()


def test_mesh_terminal_in_parallel_on_several_nodes(user, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("a")
    make_node("b")
    context = ToolContext(user=user, chat_session_id=41, attached_nodes={"a": "", "b": "/w"})
    result = tool_invoke(
        context=context,
        name="mesh_terminal",
        arguments={"command": "uptime", "node_ids": ["a", "b"], "background": True},
    )
    tasks = {t.node.node_id: t for t in Task.objects.select_related("node")}
    assert sorted(result.task_ids) == sorted(str(t.pk) for t in tasks.values())
    assert tasks["a"].payload == {"command": "uptime"}
    assert tasks["b"].payload == {"command": "uptime", "cwd": "/w"}


def _finish_as_node(task: Task, *, stdout: bytes, exit_code: int = 0, result: Any = None) -> None:
    """Do what the gRPC side does when the node runs and reports the task."""
    node_id = task.node.node_id
    claimed = mesh_services.tasks_claim_for_delivery(
        node_id=node_id, connection_id=f"test-{node_id}"
    )
    assert claimed is not None
    assert [t.pk for t in claimed.tasks] == [task.pk]
    mesh_services.task_started(node_id=node_id, task_id=str(task.pk))
    mesh_services.output_append(
        node_id=node_id, task_id=str(task.pk), seq=1, stream="stdout", data=stdout
    )
    outcome = "SUCCEEDED" if exit_code == 0 else "FAILED"
    mesh_services.task_finish(
        node_id=node_id,
        task_id=str(task.pk),
        outcome=outcome,
        exit_code=exit_code,
        last_seq=1,
        result=result,
    )


def test_wait_tasks_peeks_then_reads_the_finished_output(context: ToolContext) -> None:
    started = tool_invoke(
        context=context,
        name="mesh_terminal",
        arguments={"command": "echo hello", "node_id": "dev", "background": True},
    )
    (task_id,) = started.task_ids
    peek = tool_invoke(
        context=context, name="mesh_wait_tasks", arguments={"task_ids": [task_id], "timeout": 0}
    )
    assert peek.data["tasks"][0]["status"] == "queued"
    assert "still running" not in peek.text  # queued: it has not reached the node
    assert "(not started yet: waiting for node 'dev' to take it, until " in peek.text

    _finish_as_node(Task.objects.get(pk=task_id), stdout=b"hello\n")
    done = tool_invoke(
        context=context, name="mesh_wait_tasks", arguments={"task_ids": [task_id], "timeout": 5}
    )
    assert done.error_code == ""
    assert done.task_ids == [task_id]
    item = done.data["tasks"][0]
    assert (item["status"], item["exit_code"], item["stdout"], item["stderr"]) == (
        "succeeded",
        0,
        "hello\n",
        "",
    )
    assert done.text == f"[dev] task {task_id}: succeeded, exit code 0\nhello"


def test_mesh_files_queues_the_exact_payload(context: ToolContext) -> None:
    result = tool_invoke(
        context=context,
        name="mesh_files",
        arguments={
            "node_id": "dev",
            "action": "write",
            "path": "notes/todo.txt",
            "content": "buy milk\n",
            "timeout": 0.1,
        },
    )
    task = Task.objects.get()
    assert (task.kind, task.payload) == (
        "files",
        {
            "action": "write",
            "path": "/srv/work/notes/todo.txt",
            "content": "buy milk\n",
            "encoding": "utf-8",
        },
    )
    assert result.task_ids == [str(task.pk)]
    assert result.data["tasks"][0]["status"] == "queued"


def test_browser_queues_navigate(user, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("web", skill_config={"browser": True}, capabilities={"browser": True})
    context = ToolContext(user=user, chat_session_id=41, attached_nodes={"web": ""})
    result = tool_invoke(
        context=context,
        name="browser",
        arguments={
            "node_id": "web",
            "action": "navigate",
            "url": "https://example.com/",
            "timeout": 0.1,
        },
    )
    task = Task.objects.get()
    assert (task.kind, task.payload) == (
        "browser",
        # The hub adds the chat session: the node keeps one browser context per session.
        {"action": "navigate", "url": "https://example.com/", "session": "41"},
    )
    assert result.task_ids == [str(task.pk)]


def test_a_task_for_an_offline_node_reads_as_not_delivered(context: ToolContext, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("away")  # never connected: offline
    context.attached_nodes["away"] = ""
    started = tool_invoke(
        context=context,
        name="mesh_terminal",
        arguments={"command": "uptime", "node_id": "away", "background": True},
    )
    (task_id,) = started.task_ids
    task = Task.objects.get(pk=task_id)
    peek = tool_invoke(
        context=context, name="mesh_wait_tasks", arguments={"task_ids": [task_id], "timeout": 0}
    )
    assert peek.text == (
        f"[away] task {task_id}: queued\n"
        "(not delivered: node 'away' is offline, so the command has not run. It is dropped "
        f"without running if the node is not back by {task.deliver_by.isoformat()}; call "
        "mesh_wait_tasks with this task id to learn what became of it)"
    )
    assert peek.data["tasks"][0]["node_status"] == "offline"
    Task.objects.filter(pk=task_id).update(deliver_by=task.created_at)
    ended = tool_invoke(
        context=context, name="mesh_wait_tasks", arguments={"task_ids": [task_id], "timeout": 5}
    )
    assert ended.data["tasks"][0]["status"] == "timed_out"
    assert ended.text.endswith(
        "(not delivered: node 'away' is offline; the command never ran and will not run)"
    )
    assert "still running" not in ended.text
