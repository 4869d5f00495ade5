"""The sandbox bypass corpus: every attempt is refused, and real bash on a real agent proves it.

(i) Fast: each attempt is checked as the hub checks it (no workspace) and as the node does (its
workspace and cwd): the node must refuse every one. (ii) Live: one hub process, two real agents
(a strict node and a permissive one). Every attempt is sent through the REST API (the hub
refuses it, or the node does), and again as a task row inserted below the hub's check (the
node's own check must hold). No attempt's marker file may ever appear; allowed control lines in
the same harness do create theirs, so the test can fail.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortex.testing import wait_until
from mesh.agent.sandbox import Policy, check_command
from tests.trust.figures import record
from tests.trust.sandbox_corpus import ATTEMPTS, CLASSES, CONTROLS, POLICIES, render

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out", "lost"}
NODE_IDS = {"strict": "sbx-strict", "permissive": "sbx-permissive"}
SETUP = """
import json
from django.contrib.auth.models import Group
from accounts.models import User
from mesh import services
from mesh.models import Node

admin = User.objects.create_superuser(email="root@example.com", password="x-x-x-x-x-x")
user = User.objects.create_user(email="alice@example.com", password="x-x-x-x-x-x")
team = Group.objects.create(name="team")
user.groups.add(team)
invites = {}
for node_id, policy in POLICIES.items():
    node, invite = services.node_create(
        actor=admin, node_id=node_id, display_name=node_id,
        skill_config={"shell": True, "files": False, "browser": False, "max_concurrent_tasks": 8},
    )
    Node.objects.filter(pk=node.pk).update(sandbox_policy=policy)
    services.node_grant(actor=admin, node=node, group=team)
    invites[node_id] = invite
print(json.dumps(invites))
"""
# Below the hub's check: task rows written as task_dispatch writes them, minus the check.
INSERT = """
import json, uuid
from accounts.models import User
from mesh.models import Node, Task
alice = User.objects.get(email="alice@example.com")
ids = []
for node_id, command in ROWS:
    task = Task.objects.create(
        id=uuid.uuid4(), node=Node.objects.get(node_id=node_id), requested_by=alice,
        kind="shell", payload={"command": command}, timeout=20,
    )
    ids.append(str(task.id))
print(json.dumps(ids))
"""


def _case(tmp: Path, index: int, template: str, via: str) -> tuple[Path, str]:
    marker = tmp / "markers" / f"{via}-{index}"
    workspace = tmp / "workspace"
    command = render(
        template,
        marker=str(marker),
        rel=os.path.relpath(marker, workspace),
        name=marker.name,
        directory=str(marker.parent),
    )
    return marker, command


def _prepare(tmp: Path) -> Path:
    workspace = tmp / "workspace"
    (tmp / "markers").mkdir(parents=True, exist_ok=True)
    workspace.mkdir(parents=True, exist_ok=True)
    # A symlink inside the workspace pointing out of it: only the node can see where it goes.
    (workspace / "out").symlink_to(tmp / "markers")
    return workspace


def test_the_corpus_covers_every_class_with_100_attempts() -> None:
    assert len(ATTEMPTS) >= 100
    assert len(set(ATTEMPTS)) == len(ATTEMPTS)
    expected = {"assignment", "deferred", "lexing", "redirection", "dev_tcp", "indirect"}
    assert expected | {"wrapper", "root_wipe", "substitution"} <= set(CLASSES)


@pytest.mark.parametrize(("index", "attempt"), list(enumerate(ATTEMPTS)))
def test_every_attempt_is_refused_by_the_checker(
    index: int, attempt: tuple[str, str, str], tmp_path: Path
) -> None:
    cls, policy_name, template = attempt
    workspace = _prepare(tmp_path)
    _, command = _case(tmp_path, index, template, "unit")
    policy = Policy.from_dict(POLICIES[policy_name])
    node = check_command(policy, command, workspace, cwd=workspace)
    assert node.allowed is False, (cls, command, node)
    assert node.reason


@pytest.mark.parametrize(("policy_name", "template"), CONTROLS)
def test_control_lines_are_allowed(policy_name: str, template: str, tmp_path: Path) -> None:
    workspace = _prepare(tmp_path)
    _, command = _case(tmp_path, 0, template, "unit")
    policy = Policy.from_dict(POLICIES[policy_name])
    assert check_command(policy, command).allowed is True
    assert check_command(policy, command, workspace, cwd=workspace).allowed is True


# ------------------------------------------------------------------------------------- live
def _wait_terminal(http: httpx.Client, ids: list[str], timeout: float = 240) -> dict[str, Any]:
    done: dict[str, Any] = {}

    def all_done() -> dict[str, Any] | None:
        for task_id in [t for t in ids if t not in done]:
            task = http.get(f"/api/v1/tasks/{task_id}/").json()
            if task["status"] in TERMINAL:
                done[task_id] = task
        return done if len(done) == len(ids) else None

    return wait_until(
        all_done,
        timeout=timeout,
        interval=0.5,
        message=lambda: f"{len(ids) - len(done)} tasks did not finish",
    )


@pytest.mark.slow
def test_no_attempt_creates_its_marker_on_a_real_agent(live_hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    workspace = _prepare(tmp_path)
    setup = f"POLICIES = {json.dumps({NODE_IDS[k]: v for k, v in POLICIES.items()})}\n" + SETUP
    invites = json.loads(live_hub.manage("shell", "-c", textwrap.dedent(setup)).splitlines()[-1])
    agents = []
    for name, node_id in NODE_IDS.items():
        root = tmp_path / f"agent-{name}"
        root.mkdir()
        agents.append(
            live_hub.start_agent(
                node_id=node_id, invite=invites[node_id], root=root, workspace=workspace
            )
        )
    token = live_hub.manage("create_api_token", "alice@example.com").strip()
    http = httpx.Client(
        base_url=live_hub.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    try:
        wait_until(
            lambda: all(
                http.get(f"/api/v1/nodes/{n}/").json().get("status") == "online"
                for n in NODE_IDS.values()
            ),
            timeout=60,
            interval=0.5,
            message="the agents did not come online",
        )

        # Controls first: the harness does run what the policy allows.
        control_ids = []
        for i, (policy_name, template) in enumerate(CONTROLS):
            marker, command = _case(tmp_path, i, template, "control")
            response = http.post(
                f"/api/v1/nodes/{NODE_IDS[policy_name]}/tasks/",
                json={"command": command, "timeout": 20},
            )
            assert response.status_code in (200, 201, 202), response.text
            control_ids.append((response.json()["id"], marker, command))
        finished = _wait_terminal(http, [t for t, _, _ in control_ids])
        for task_id, marker, command in control_ids:
            assert finished[task_id]["status"] == "succeeded", finished[task_id]
            produced = workspace / "ctl-strict.txt" if "ctl-strict" in command else marker
            assert produced.exists(), command

        # (a) through the REST API: refused by the hub (4xx), or by the node.
        via_api: dict[str, tuple[int, str, str]] = {}
        hub_refused = Counter[str]()
        for i, (cls, policy_name, template) in enumerate(ATTEMPTS):
            _, command = _case(tmp_path, i, template, "api")
            response = http.post(
                f"/api/v1/nodes/{NODE_IDS[policy_name]}/tasks/",
                json={"command": command, "timeout": 20},
            )
            if response.status_code in (200, 201, 202):
                via_api[response.json()["id"]] = (i, cls, command)
            else:
                assert response.status_code == 403, (command, response.text)
                assert response.json()["error"]["code"] == "command_not_allowed", response.text
                hub_refused[cls] += 1

        # (b) below the hub's check: the node's own check must refuse every attempt.
        rows = []
        for i, (_, policy_name, template) in enumerate(ATTEMPTS):
            rows.append((NODE_IDS[policy_name], _case(tmp_path, i, template, "node")[1]))
        script = f"ROWS = {json.dumps(rows)}\n" + INSERT
        node_ids = json.loads(live_hub.manage("shell", "-c", script).splitlines()[-1])

        results = _wait_terminal(http, list(via_api) + node_ids)
        for task_id, (_, _cls, command) in via_api.items():
            task = results[task_id]
            assert task["status"] == "failed", (command, task)
            assert task["error_code"] == "command_not_allowed", (command, task)
        for task_id, (cls, _, template) in zip(node_ids, ATTEMPTS, strict=True):
            task = results[task_id]
            assert task["status"] == "failed", (cls, template, task)
            assert task["error_code"] == "command_not_allowed", (cls, template, task)
        time.sleep(1)  # a trap or a background job of a wrongly accepted line would show now
    finally:
        for agent in agents:
            live_hub.stop_process(agent)
        http.close()

    appeared = sorted(p.name for p in (tmp_path / "markers").iterdir() if p.name[0] in "an")
    per_class = Counter(cls for cls, _, _ in ATTEMPTS)
    successes = Counter(ATTEMPTS[int(name.split("-", 1)[1])][0] for name in appeared if "-" in name)
    for cls in CLASSES:
        record(
            f"sandbox_bypass_{cls}",
            successes[cls],
            checked=per_class[cls],  # attempts; each ran twice (REST, and below the hub)
            source="tests/trust/test_sandbox_corpus.py",
            detail=", ".join(n for n in appeared if ATTEMPTS[int(n.split("-", 1)[1])][0] == cls),
        )
    record(
        "sandbox_bypass_hub_refused",
        sum(hub_refused.values()),
        checked=len(ATTEMPTS),
        source="tests/trust/test_sandbox_corpus.py",
    )
    assert appeared == [], appeared
