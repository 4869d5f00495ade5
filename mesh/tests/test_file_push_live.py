"""POST /api/v1/nodes/{id}/files/ through a real hub process to a real agent process."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from cortex.testing import wait_until
from mesh.tests.test_file_push import FILE_MODE

pytestmark = pytest.mark.slow


def _wait(live_hub: Any, headers: dict[str, str], path: str, until: Any) -> dict:  # type: ignore[type-arg]
    seen: list[Any] = []

    def answer() -> Any:
        seen[:] = [requests.get(f"{live_hub.http_url}{path}", headers=headers, timeout=40).json()]
        return seen[0] if until(seen[0]) else None

    return wait_until(answer, timeout=60, message=lambda: f"{path} never got there: {seen}")


def test_pushed_file_reaches_a_real_agent(live_hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    invite = live_hub.seed_team_node()
    token = live_hub.manage("create_api_token", "alice@example.com", "--name", "push").strip()
    headers = {"Authorization": f"Bearer {token}"}
    workspace = tmp_path / "workspace"
    (tmp_path / "outside.bin").write_bytes(b"keep")
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path, workspace=workspace)
    data = os.urandom(6 * 1024 * 1024 + 3)
    try:
        _wait(live_hub, headers, "/api/v1/nodes/live/", lambda n: n["status"] != "offline")
        pushed = requests.post(
            f"{live_hub.http_url}/api/v1/nodes/live/files/",
            headers=headers,
            data={"path": "drop/big.bin"},
            files={"file": ("big.bin", data)},
            timeout=60,
        )
        assert pushed.status_code == 202, pushed.text
        escaped = requests.post(
            f"{live_hub.http_url}/api/v1/nodes/live/files/",
            headers=headers,
            data={"path": "../outside.bin"},
            files={"file": ("evil.bin", b"evil")},
            timeout=60,
        )
        assert escaped.status_code == 202, escaped.text
        terminal = ("succeeded", "failed", "cancelled", "timed_out", "lost")
        done = _wait(
            live_hub,
            headers,
            f"/api/v1/tasks/{pushed.json()['id']}/?wait=30",
            lambda t: t["status"] in terminal,
        )
        refused = _wait(
            live_hub,
            headers,
            f"/api/v1/tasks/{escaped.json()['id']}/?wait=30",
            lambda t: t["status"] in terminal,
        )
    except Exception as exc:
        agent_log = (tmp_path / "agent.log").read_text(errors="replace")[-3000:]
        hub_log = live_hub.log()[-3000:]
        raise AssertionError(f"agent log:\n{agent_log}\nhub log:\n{hub_log}") from exc
    finally:
        live_hub.stop_process(agent)

    digest = hashlib.sha256(data).hexdigest()
    assert (done["status"], done["result"]) == (
        "succeeded",
        {"path": "drop/big.bin", "size": len(data), "sha256": digest, "mode": FILE_MODE},
    )
    assert "content" not in done["payload"]
    assert hashlib.sha256((workspace / "drop" / "big.bin").read_bytes()).hexdigest() == digest
    assert (refused["status"], refused["error_code"]) == ("failed", "path_outside_workspace")
    assert (tmp_path / "outside.bin").read_bytes() == b"keep"
    staging = tmp_path / "media" / "mesh" / "push"
    # Both blobs are deleted once their tasks ended (right after the result's commit).
    wait_until(lambda: list(staging.iterdir()) == [], timeout=30, message="blobs left staged")
