"""The gate on a real hub process and a real agent running real bash.

- A task for an offline node ends `timed_out` / `not_delivered` at its deadline and its command
  never runs when the node comes back.
- The node refuses a sensitive command that arrives without the hub's confirmation mark, and
  runs it when a person confirmed it.
"""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cortex.testing import wait_until

pytestmark = pytest.mark.slow

# A task row written without the hub's dispatch path: what a node would get if anything but
# `task_dispatch` (which needs a person's confirmation) queued a sensitive command.
UNMARKED = """
from accounts.models import User
from mesh.models import Node, Task

task = Task.objects.create(
    node=Node.objects.get(node_id="live"),
    requested_by=User.objects.get(email="alice@example.com"),
    kind="shell",
    payload={"command": "rm -f victim.txt; touch unconfirmed-marker"},
    timeout=20,
)
print(task.pk)
"""


def _http(hub: Any, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310  # loopback test hub
        hub.http_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _wait_online(hub: Any, token: str) -> None:
    wait_until(
        lambda: _http(hub, "GET", "/api/v1/nodes/live/", token)[1]["status"] != "offline",
        timeout=60,
        message="the agent never came online",
    )


def _settled(hub: Any, token: str, task_id: str) -> dict[str, Any]:
    for _ in range(3):
        status, task = _http(hub, "GET", f"/api/v1/tasks/{task_id}/?wait=30", token)
        assert status == 200, task
        if task["status"] not in ("queued", "dispatched", "running"):
            return task
    raise AssertionError(f"task {task_id} did not finish: {task}")


def test_offline_deadline_and_node_side_confirmation(live_hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seeded = live_hub.seed(token=True)
    invite, token = seeded["invite"], seeded["token"]
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "victim.txt").write_text("keep me")
    agent = None
    try:
        # The node is offline: the task waits until its deadline, then ends not_delivered.
        status, late = _http(
            live_hub,
            "POST",
            "/api/v1/nodes/live/tasks/",
            token,
            {"command": "touch not-delivered-marker", "delivery_timeout": 1},
        )
        assert (status, late["status"]) == (201, "queued"), late
        ended = _settled(live_hub, token, late["id"])
        assert (ended["status"], ended["error_code"]) == ("timed_out", "not_delivered")
        assert ended["dispatched_at"] is None

        # A sensitive command with no confirmation mark, queued while the node is away.
        unmarked = live_hub.manage("shell", "-v", "0", "-c", textwrap.dedent(UNMARKED)).strip()
        unmarked_id = unmarked.splitlines()[-1]

        agent = live_hub.start_agent(
            node_id="live", invite=invite, root=tmp_path, workspace=workspace
        )
        _wait_online(live_hub, token)
        refused = _settled(live_hub, token, unmarked_id)
        assert (refused["status"], refused["error_code"]) == ("failed", "confirmation_required")
        assert refused["error_message"] == (
            "'rm' is sensitive on this node and the task carries no confirmation."
        )
        assert refused["dispatched_at"] is not None  # the node got it, and refused it

        # People must confirm; a confirmed task carries the mark and the node runs it.
        status, body = _http(
            live_hub,
            "POST",
            "/api/v1/nodes/live/tasks/",
            token,
            {"command": "rm -f victim.txt; touch confirmed-marker"},
        )
        assert (status, body["error"]["code"]) == (409, "confirmation_required")
        status, confirmed = _http(
            live_hub,
            "POST",
            "/api/v1/nodes/live/tasks/",
            token,
            {"command": "rm -f victim.txt; touch confirmed-marker", "confirm": True},
        )
        assert status == 201, confirmed
        done = _settled(live_hub, token, confirmed["id"])
        assert (done["status"], done["exit_code"]) == ("succeeded", 0), done
    except BaseException:
        print(live_hub.log()[-4000:])  # noqa: T201  # the hub's log explains a failure
        if (tmp_path / "agent.log").exists():
            print((tmp_path / "agent.log").read_text(errors="replace")[-4000:])  # noqa: T201
        raise
    finally:
        if agent is not None:
            live_hub.stop_process(agent)

    assert (workspace / "confirmed-marker").exists()
    assert not (workspace / "victim.txt").exists()
    assert not (workspace / "unconfirmed-marker").exists()
    # The late task was older than both: had it been delivered, it would have run first.
    assert not (workspace / "not-delivered-marker").exists()
    status, late_again = _http(live_hub, "GET", f"/api/v1/tasks/{late['id']}/", token)
    assert (late_again["status"], late_again["error_code"]) == ("timed_out", "not_delivered")
