"""mesh_terminal and mesh_files through a real hub process and a real agent process."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

INVOKE = """
import json, time
from accounts.models import User
from mesh.models import Node
from tools.base import ToolContext
from tools.services import tool_invoke
from cortex.testing import wait_until

wait_until(
    lambda: Node.objects.get(node_id="live").status != "offline",
    timeout=60,
    message="the agent never came online",
)

user = User.objects.get(email="alice@example.com")
context = ToolContext(user=user, chat_session_id=5, attached_nodes={"live": ""}, tool_call_id="c1")
calls = [
    ("mesh_terminal", {"command": "echo hello-from-agent; echo oops >&2; exit 3",
                       "node_id": "live"}),
    ("mesh_files", {"node_id": "live", "action": "write", "path": "notes/todo.txt",
                    "content": "buy milk\\n"}),
    ("mesh_files", {"node_id": "live", "action": "read", "path": "notes/todo.txt"}),
    ("mesh_files", {"node_id": "live", "action": "copy", "path": "notes/todo.txt",
                    "to_path": "notes/copy.txt"}),
    ("mesh_files", {"node_id": "live", "action": "list", "path": "notes"}),
    ("mesh_terminal", {"command": "cat notes/copy.txt", "node_id": "live", "timeout": 20}),
    ("mesh_files", {"node_id": "live", "action": "read", "path": "../outside.txt"}),
    ("mesh_terminal", {"command": "sleep 1; echo later", "node_id": "live", "background": True}),
]
results = []
for name, arguments in calls:
    results.append(tool_invoke(context=context, name=name, arguments=arguments).as_dict())
waited = tool_invoke(
    context=context,
    name="mesh_wait_tasks",
    arguments={"task_ids": results[-1]["task_ids"], "timeout": 30},
)
results.append(waited.as_dict())
print("RESULTS" + json.dumps(results))
"""


def _manage_shell(hub: Any, code: str) -> str:
    return hub.manage("shell", "-c", textwrap.dedent(code))


def test_mesh_tools_against_a_real_agent(live_hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    invite = live_hub.seed_team_node()
    workspace = tmp_path / "workspace"
    (tmp_path / "outside.txt").write_text("secret")
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path, workspace=workspace)
    try:
        out = _manage_shell(live_hub, INVOKE)
    except Exception as exc:
        agent_log = (tmp_path / "agent.log").read_text(errors="replace")[-3000:]
        hub_log = live_hub.log()[-3000:]
        raise AssertionError(f"agent log:\n{agent_log}\nhub log:\n{hub_log}") from exc
    finally:
        live_hub.stop_process(agent)

    line = next(x for x in out.splitlines() if x.startswith("RESULTS"))
    (
        shell,
        write,
        read,
        copy,
        listing,
        cat,
        outside,
        background,
        waited,
    ) = json.loads(line.removeprefix("RESULTS"))

    assert shell["error_code"] == ""
    task = shell["data"]["tasks"][0]
    assert (task["status"], task["exit_code"]) == ("failed", 3)
    assert (task["stdout"], task["stderr"]) == ("hello-from-agent\n", "oops\n")
    assert shell["text"] == (
        f"[live] task {task['task_id']}: failed, exit code 3, nonzero_exit\n"
        "error: The command exited with status 3.\nhello-from-agent\nstderr:\noops"
    )
    assert shell["task_ids"] == [task["task_id"]]

    assert write["data"]["tasks"][0]["status"] == "succeeded"
    assert (workspace / "notes" / "todo.txt").read_text() == "buy milk\n"
    assert read["data"]["tasks"][0]["result"]["content"] == "buy milk\n"
    assert read["text"].endswith("content:\nbuy milk\n")
    assert copy["data"]["tasks"][0]["status"] == "succeeded"
    assert (workspace / "notes" / "copy.txt").read_text() == "buy milk\n"
    entries = listing["data"]["tasks"][0]["result"]["entries"]
    assert sorted(e["name"] for e in entries) == ["copy.txt", "todo.txt"]
    assert cat["data"]["tasks"][0]["stdout"] == "buy milk\n"

    assert outside["error_code"] == "path_outside_workspace"
    assert outside["task_ids"] == []

    assert background["data"]["tasks"][0]["status"] in ("queued", "dispatched", "running")
    done = waited["data"]["tasks"][0]
    assert (done["task_id"], done["status"], done["stdout"]) == (
        background["task_ids"][0],
        "succeeded",
        "later\n",
    )
