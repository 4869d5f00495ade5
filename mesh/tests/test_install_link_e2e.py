"""One-line install, end to end: a real hub, the admin's command run by real bash and curl in a
fresh HOME, the node online; pasting the same command again fails with a clear message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from cortex.testing import wait_until
from mesh.tests.test_provisioning_e2e import Hub, stop

pytestmark = pytest.mark.slow


# The hub renders the bundle: it must know its public addresses.
@pytest.mark.live_hub_env(
    CORTEX_PUBLIC_URL=lambda hub: hub.http_url,
    CORTEX_PUBLIC_GRPC_ADDRESS=lambda hub: hub.grpc_address,
)
def test_pasted_command_installs_and_starts_the_node_once(live_hub, tmp_path: Path) -> None:
    hub = Hub(live_hub)
    created = hub.http.post("/api/v1/nodes/", json={"node_id": "paste-1", "display_name": "P"})
    assert created.status_code == 201, created.text
    issued = hub.http.post("/api/v1/nodes/paste-1/install-link/")
    assert issued.status_code == 201, issued.text
    link = issued.json()
    assert link["url"].startswith(live_hub.http_url + "/api/v1/install/cil_")
    assert link["command"] == f"curl -fsSL '{link['url']}' | bash"
    assert link["expires_at"]

    # A fresh HOME; the venv run.sh would make is made ahead (no package index here), with a
    # .pth onto this checkout's packages, so `pip install --no-index` finds everything.
    home = tmp_path / "home"
    target = home / "cortex-node-paste-1"
    target.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "venv", str(target / ".venv")], check=True, timeout=120)
    site = next((target / ".venv" / "lib").glob("python3*/site-packages"))
    (site / "cortex_checkout.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    env.update(HOME=str(home), PIP_OPTIONS="--no-index", PYTHONUNBUFFERED="1")
    log = tmp_path / "install.log"
    proc = subprocess.Popen(
        ["bash", "-c", link["command"]],
        cwd=tmp_path,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: hub.node("paste-1")["status"] == "online", timeout=90)
        text = log.read_text()
        assert f"downloading the bundle of node paste-1 into {target}" in text
        assert (target / "agent_config.yaml").stat().st_mode & 0o777 == 0o600
        assert not (target / "bundle.zip").exists()
        task = hub.task(hub.run("paste-1", "echo pasted"), wait=30)
        assert task["stdout"] == "pasted\n"
    finally:
        stop(proc, signal.SIGTERM)

    # The same command again: a clear message, a non-zero exit, nothing downloaded.
    again = subprocess.run(
        ["bash", "-c", link["command"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1
    assert "This install link was already used" in again.stderr
    # Other clients see the status code.
    replay = hub.http.get(link["url"])
    assert replay.status_code == 410
    assert replay.headers["X-Cortex-Error"] == "install_link_used"

    audit = hub.http.get("/api/v1/audit/", params={"node": "paste-1", "action": "node.install"})
    actions = sorted((e["action"], e["details"].get("stage", "")) for e in audit.json()["results"])
    # Refusals are counted per minute and audited at the 1st, 10th, ...: one or two rows here.
    assert [a for a in actions if a[0] != "node.install_link_refused"] == [
        ("node.install_link_issued", ""),
        ("node.install_link_used", "bundle"),
        ("node.install_link_used", "script"),
    ]
    assert ("node.install_link_refused", "") in actions
    assert "cil_" not in str(audit.json())
