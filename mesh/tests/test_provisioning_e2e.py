"""End to end: a real hub process, a node created over the API, its bundle written by
`provision_node`, and the agent started from the bundle as a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from cortex.testing import wait_until

pytestmark = pytest.mark.slow

ADMIN = "ops@example.com"


class Hub:
    """HTTP helpers against the live hub with an admin bearer token."""

    def __init__(self, live_hub) -> None:  # type: ignore[no-untyped-def]
        self.live = live_hub
        live_hub.env["CORTEX_PUBLIC_GRPC_ADDRESS"] = live_hub.grpc_address
        live_hub.env.update(CORTEX_ADMIN_EMAIL=ADMIN, CORTEX_ADMIN_PASSWORD="correct horse battery")
        live_hub.manage("ensure_admin")
        token = live_hub.manage("create_api_token", ADMIN).strip()
        self.http = httpx.Client(
            base_url=live_hub.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def node(self, node_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/nodes/{node_id}/")
        assert response.status_code == 200, response.text
        return response.json()

    def run(self, node_id: str, command: str, timeout: float = 30) -> str:
        response = self.http.post(
            f"/api/v1/nodes/{node_id}/tasks/", json={"command": command, "timeout": timeout}
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def task(self, task_id: str, wait: float = 0) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/tasks/{task_id}/", params={"wait": wait} if wait else {})
        assert response.status_code == 200, response.text
        return response.json()


def tune(bundle: Path) -> None:
    """Short waits for the test (an operator may edit agent_config.yaml the same way)."""
    path = bundle / "agent_config.yaml"
    config = yaml.safe_load(path.read_text())
    config["shell"]["cancel_grace_s"] = [0.5, 0.5]
    config["reconnect"] = {"initial_s": 0.2, "factor": 1.6, "max_s": 2}
    path.write_text(yaml.safe_dump(config))


def start_agent(bundle: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    return subprocess.Popen(
        [sys.executable, "-m", "cortex_agent", "--config", "agent_config.yaml"],
        cwd=bundle,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def sleepers(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            same = proc.info["cmdline"] and " ".join(proc.info["cmdline"]) == marker
            if same and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_node_from_bundle_runs_cancels_is_lost_and_comes_back(live_hub, tmp_path: Path) -> None:
    hub = Hub(live_hub)
    created = hub.http.post("/api/v1/nodes/", json={"node_id": "e2e-1", "display_name": "E2E"})
    assert created.status_code == 201, created.text
    bundle = tmp_path / "bundle"
    printed = live_hub.manage("provision_node", "e2e-1", "--out", str(bundle))
    assert "Wrote the bundle of node e2e-1" in printed
    tune(bundle)
    log = tmp_path / "agent.log"
    agent = start_agent(bundle, log)
    orphans: list[psutil.Process] = []
    try:
        # Online, with stats from the agent's heartbeats.
        node = wait_until(
            lambda: (n := hub.node("e2e-1"))["status"] == "online" and n["stats"] and n
        )
        assert node["stats"]["memory_total"] == psutil.virtual_memory().total
        credential = (bundle / ".cortex-agent" / "credential").read_text()
        assert (bundle / ".cortex-agent" / "credential").stat().st_mode & 0o777 == 0o600

        # A command and its output.
        task = hub.task(hub.run("e2e-1", "echo hello from $(basename $PWD)"), wait=30)
        assert (task["status"], task["exit_code"]) == ("succeeded", 0)
        assert task["stdout"] == "hello from workspace\n"

        # Cancel `sleep 600`: the process tree is gone.
        sleeping = hub.run("e2e-1", "sleep 600", timeout=900)
        wait_until(lambda: hub.task(sleeping)["status"] == "running")
        tree = wait_until(lambda: sleepers("sleep 600"))
        response = hub.http.post(f"/api/v1/tasks/{sleeping}/cancel/", json={"reason": "test"})
        assert response.status_code in (200, 202), response.text
        assert hub.task(sleeping, wait=30)["status"] == "cancelled"
        wait_until(
            lambda: not any(p.is_running() and p.status() != "zombie" for p in tree), timeout=10
        )
        assert sleepers("sleep 600") == []

        # Kill the agent mid-task: the task ends `lost` after the grace period.
        doomed = hub.run("e2e-1", "sleep 301", timeout=900)
        wait_until(lambda: hub.task(doomed)["status"] == "running")
        orphans = wait_until(lambda: sleepers("sleep 301"))
        stop(agent, signal.SIGKILL)
        lost = wait_until(lambda: (t := hub.task(doomed))["status"] == "lost" and t, timeout=30)
        assert lost["status"] == "lost"
        assert wait_until(lambda: hub.node("e2e-1")["status"] == "offline", timeout=30)

        # Start it again: it reconnects with the saved credential (the invite is spent).
        agent = start_agent(bundle, log)
        wait_until(lambda: hub.node("e2e-1")["status"] == "online", timeout=30)
        assert (bundle / ".cortex-agent" / "credential").read_text() == credential
        # What the killed agent left running was ended by the restarted one.
        wait_until(lambda: sleepers("sleep 301") == [], timeout=15)
        again = hub.task(hub.run("e2e-1", "echo back"), wait=30)
        assert (again["status"], again["stdout"]) == ("succeeded", "back\n")
        assert "refused" not in log.read_text()
    finally:
        stop(agent)
        for proc in orphans:
            if proc.is_running():
                proc.kill()


@pytest.mark.parametrize(
    ("node_id", "launcher"),
    [("e2e-sh", ["bash", "run.sh"]), ("e2e-py", [sys.executable, "bootstrap.py"])],
)
def test_start_scripts_install_and_start_the_agent(
    live_hub, tmp_path: Path, node_id: str, launcher: list[str]
) -> None:
    """`bash run.sh` (or `python bootstrap.py`): venv, pip install (offline here), agent online.

    The sandbox has no package index, so the test pre-creates the venv with a .pth pointing at
    this checkout's site-packages; `pip install --no-index -r requirements.txt` then finds every
    requirement satisfied, and run.sh goes on to start the agent exactly as on a real node.
    """
    hub = Hub(live_hub)
    invite = live_hub.manage("register_node", node_id).strip()
    assert invite.startswith("cni_")
    bundle = tmp_path / "bundle"
    live_hub.manage("provision_node", node_id, "--out", str(bundle))
    subprocess.run([sys.executable, "-m", "venv", str(bundle / ".venv")], check=True, timeout=120)
    site = next((bundle / ".venv" / "lib").glob("python3*/site-packages"))
    (site / "cortex_checkout.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    log = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    proc = subprocess.Popen(
        launcher,
        cwd=bundle,
        env={**env, "PIP_OPTIONS": "--no-index", "PYTHONUNBUFFERED": "1"},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: hub.node(node_id)["status"] == "online", timeout=90)
        assert f"cortex-agent: starting node {node_id}" in log.read_text()
        task = hub.task(hub.run(node_id, "echo via run.sh"), wait=30)
        assert task["stdout"] == "via run.sh\n"
    finally:
        stop(proc)
