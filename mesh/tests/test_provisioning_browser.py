"""The bundle and the browser skill: bootstrap.py installs Playwright when the hub has the skill
on, uses a Chromium already on the machine, or says exactly what is missing."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from mesh.agent.config import parse_config
from mesh.services.provisioning import BROWSER_REQUIREMENT, provisioning_write

pytestmark = pytest.mark.django_db


def _bootstrap(directory: Path) -> Any:
    spec = importlib.util.spec_from_file_location(
        "bootstrap_under_test", directory / "bootstrap.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_the_skill_the_bundle_installs_no_browser(staff_user, make_node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("plain")
    provisioning_write(actor=staff_user, node=node, directory=tmp_path)
    assert _bootstrap(tmp_path).BROWSER is False


def test_with_the_skill_bootstrap_uses_playwright_and_the_machine_chromium(
    staff_user, make_node, tmp_path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("web", skill_config={"browser": True})
    provisioning_write(actor=staff_user, node=node, directory=tmp_path)
    bootstrap = _bootstrap(tmp_path)
    assert (bootstrap.BROWSER, bootstrap.BROWSER_REQUIREMENT) == (True, BROWSER_REQUIREMENT)
    config = parse_config(
        __import__("yaml").safe_load((tmp_path / "agent_config.yaml").read_text()),
        config_path=tmp_path / "agent_config.yaml",
    )
    assert config.browser_idle_timeout == 600.0
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is missing: run scripts/system-packages.sh test")
    # This interpreter has Playwright, so nothing is installed; the Chromium is found on PATH.
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", os.path.dirname(chromium))
    assert bootstrap.browser_setup(sys.executable) is True
    assert capsys.readouterr().err == f"cortex-agent: browser skill: Playwright with {chromium}\n"


def test_without_a_chromium_bootstrap_says_what_is_missing(
    staff_user, make_node, tmp_path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("web", skill_config={"browser": True})
    provisioning_write(actor=staff_user, node=node, directory=tmp_path)
    bootstrap = _bootstrap(tmp_path)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(empty))
    assert bootstrap.browser_setup(sys.executable) is False
    said = capsys.readouterr().err
    assert said.startswith(
        "cortex-agent: browser skill: missing Chromium: none of chromium, chromium-browser, "
        "google-chrome, google-chrome-stable is on the PATH"
    )
    assert "  Debian/Ubuntu: sudo apt-get install chromium\n" in said
    assert f"  any Linux:     {sys.executable} -m playwright install --with-deps chromium" in said


def test_without_playwright_bootstrap_installs_it_or_says_so(
    staff_user, make_node, tmp_path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("web", skill_config={"browser": True})
    provisioning_write(actor=staff_user, node=node, directory=tmp_path)
    bootstrap = _bootstrap(tmp_path)
    # An interpreter without Playwright and an offline bundle without its wheel: pip fails.
    (tmp_path / "wheels").mkdir()
    python = shutil.which("python3", path="/usr/bin") or "/usr/bin/python3"
    assert bootstrap.browser_setup(python) is False
    said = capsys.readouterr().err
    assert f"cortex-agent: browser skill: installing Playwright ({BROWSER_REQUIREMENT})\n" in said
    assert (
        f"cortex-agent: browser skill: missing Playwright: pip could not install "
        f"{BROWSER_REQUIREMENT} (see above), so this node starts without a browser."
    ) in said
