"""Acceptance for issue 18, first run: from a hub with only its admin to a node online and an
LLM answer that quotes a command the node ran, using only the browser and one pasted command.

A real hub process, real Chromium, the admin's install command run by real bash and curl in a
fresh HOME (the agent it starts is real), and a scripted OpenAI-style model on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import psutil
import pytest

from console.tests.browsing import ARTIFACTS, browser, open_page  # noqa: F401  # fixture
from mesh.tests.test_provisioning_e2e import stop
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.tests.conftest import API_KEY, llm_server  # noqa: F401  # fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN = "admin@example.com"
PASSWORD = "a-long-first-run-password"
COMMAND = "echo cortex-$((6*7))"
ANSWER = "The node ran the command and printed cortex-42."


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"first-run-{name}.png"), full_page=True)


def _node_home(tmp_path: Path, node_id: str) -> tuple[Path, dict[str, str]]:
    """A fresh HOME whose node folder already holds the venv run.sh would make (there is no
    package index here): a .pth onto this checkout's packages lets `pip --no-index` succeed."""
    home = tmp_path / "home"
    target = home / f"cortex-node-{node_id}"
    target.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "venv", str(target / ".venv")], check=True, timeout=120)
    site = next((target / ".venv" / "lib").glob("python3*/site-packages"))
    (site / "cortex_checkout.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    env.update(HOME=str(home), PIP_OPTIONS="--no-index", PYTHONUNBUFFERED="1")
    return target, env


# `make run`: the hub knows its public addresses, and `ensure_admin` makes the only user.
@pytest.mark.live_hub_env(
    CORTEX_PUBLIC_URL=lambda hub: hub.http_url,
    CORTEX_PUBLIC_GRPC_ADDRESS=lambda hub: hub.grpc_address,
    CORTEX_ADMIN_EMAIL=ADMIN,
    CORTEX_ADMIN_PASSWORD=PASSWORD,
)
def test_make_run_to_an_answer_quoting_a_command_the_node_ran(
    live_hub,
    llm_server,  # noqa: F811
    browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert "Created admin" in live_hub.manage("ensure_admin")
    target, node_env = _node_home(tmp_path, "first")
    base = live_hub.http_url

    context, page, errors = open_page(browser, height=800)
    install: subprocess.Popen[bytes] | None = None
    log = tmp_path / "install.log"
    try:
        # Sign in as the admin.
        page.goto(base + "/console/")
        page.wait_for_url("**/console/login/?next=/console/")
        page.fill("#email", ADMIN)
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(base + "/console/")

        # Settings: the LLM provider, saved; the key reads masked.
        page.click("nav a:text-is('Settings')")
        page.wait_for_url("**/console/settings/")
        page.wait_for_selector("#me-llm-effective:has-text('Not working yet')")
        page.select_option("#me-llm-provider", "openai_compatible")
        page.fill("#me-llm-base_url", llm_server.url + "/v1")
        page.fill("#me-llm-model", "test-model")
        page.fill("#me-llm-api_key", API_KEY)
        page.click("#me-llm-save")
        page.wait_for_selector("#me-llm-status:text-is('Saved.')")
        assert "In use: openai_compatible · test-model" in page.text_content("#me-llm-effective")
        _shot(page, "settings")

        # Admin: register a node (no group: admins use every node), read the install command.
        page.click("nav a:text-is('Admin')")
        page.wait_for_url("**/console/admin/")
        page.fill("#new-node-id", "first")
        page.fill("#new-node-name", "First box")
        page.click("#node-create")
        shown = page.wait_for_selector("[data-install-command='first']:has-text('curl')")
        command = shown.text_content().strip()
        assert command.startswith(f"curl -fsSL '{base}/api/v1/install/cil_")
        assert command.endswith("' | bash")
        _shot(page, "admin")

        # On the node: paste the one command into real bash.
        install = subprocess.Popen(  # noqa: S603  # the command the page showed
            ["/bin/bash", "-c", command],
            cwd=tmp_path,
            env=node_env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        # Back in the browser: the node comes online on the node list.
        page.click("nav a:text-is('Nodes')")
        page.wait_for_url(base + "/console/")
        page.wait_for_selector(
            '[data-node-id="first"] .badge[data-status="online"]', timeout=120_000
        )
        assert (target / "agent_config.yaml").exists()
        _shot(page, "online")

        # Chats: a new chat, the node attached, a question; the model runs a command on it.
        llm_server.add(
            openai_tool_call(
                [("call_1", "mesh_terminal", json.dumps({"command": COMMAND, "node_id": "first"}))],
                text="Let me ask the node.",
            )
        )
        llm_server.add(openai_text([ANSWER[:20], ANSWER[20:]]))
        page.click("nav a:text-is('Chats')")
        page.wait_for_url("**/console/sessions/")
        page.click("#new-session")
        page.wait_for_url("**/console/sessions/*/")
        page.wait_for_selector("#attach-node option[value='first']", state="attached")
        page.select_option("#attach-node", "first")
        page.wait_for_selector("#attached .badge:text-is('first')")
        page.fill("#chat-input", "What does the node print for 6*7?")
        page.click("#send")
        # The chat asks before running: allow once, as a person would.
        page.wait_for_selector(".tool-call button.approve", timeout=60_000).click()
        page.wait_for_selector(".tool-call .output:has-text('cortex-42')", timeout=60_000)
        page.wait_for_selector(f".msg.assistant .text:has-text('{ANSWER}')", timeout=60_000)
        _shot(page, "answer")

        # The model's second turn received what the node printed as the tool's result.
        assert len(llm_server.requests) == 2
        first = {k.lower(): v for k, v in llm_server.requests[0]["headers"].items()}
        assert first["authorization"] == f"Bearer {API_KEY}"  # the key saved in Settings
        assert llm_server.requests[0]["body"]["model"] == "test-model"
        messages = llm_server.requests[1]["body"]["messages"]
        results = [m for m in messages if m.get("role") == "tool"]
        assert len(results) == 1
        assert results[0]["tool_call_id"] == "call_1"
        assert "cortex-42" in json.dumps(results[0]["content"])
        assert errors == []
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "first-run-failure.png"), full_page=True)
        print(live_hub.log()[-4000:])  # noqa: T201  # the hub's log explains a failure
        if log.exists():
            print(log.read_text(errors="replace")[-3000:])  # noqa: T201
        raise
    finally:
        context.close()
        if install is not None:
            stop(install, signal.SIGTERM)
    # The agent the pasted command started is gone with it (it may take a moment to exit).
    _gone, alive = psutil.wait_procs(_processes_under(target), timeout=30)
    assert alive == []


def _processes_under(folder: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(folder) in " ".join(proc.info["cmdline"] or []) and proc.status() != "zombie":
                found.append(proc)
        except psutil.Error:
            continue
    return found
