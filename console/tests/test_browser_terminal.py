"""The node page's terminal in headless Chromium: xterm.js typing into a real PTY on a real
agent through the hub, and the replay of the recorded session."""

from __future__ import annotations

import json
import re
import textwrap
import time

import pytest

from console.tests.test_browser import ARTIFACTS, PASSWORD, SETUP, browser  # noqa: F401
from console.tests.test_browser_chat import console_error, sign_in
from sessions_app.tests.conftest import API_KEY

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREEN = "document.querySelector('#xterm .xterm-rows')?.innerText || ''"


def _until(page, predicate, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    """Poll the terminal's screen text (the page's CSP forbids wait_for_function's eval)."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate(page.evaluate(SCREEN))
        if found:
            return found
        assert time.monotonic() < deadline, page.evaluate(SCREEN)
        page.wait_for_timeout(200)


REPLAY = "document.querySelector('#term-replay .xterm-rows')?.innerText || ''"


def test_node_terminal_types_sees_output_and_replays(live_hub, browser, tmp_path):  # noqa: F811
    code = SETUP.replace("BASE_URL", "http://127.0.0.1:9/v1").replace("API_KEY", API_KEY)
    out = live_hub.manage(
        "shell", "-v", "0", "-c", textwrap.dedent(code.replace("PASSWORD", PASSWORD))
    )
    invite = json.loads(out.strip().splitlines()[-1])["invite"]
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: console_error(msg, errors))
    base = live_hub.http_url
    try:
        sign_in(page, base)
        page.goto(base + "/console/nodes/live/")
        page.wait_for_selector("#run-form:not([hidden])", timeout=60_000)  # the node is online
        # Before a terminal is opened: a clear empty state, no blank black box.
        page.wait_for_selector("#term-recordings-empty:not([hidden])")
        assert page.locator("#term-empty").is_visible()
        assert "Open terminal" in page.locator("#term-empty").inner_text()
        assert not page.locator("#xterm").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#term").screenshot(path=str(ARTIFACTS / "node-terminal-empty.png"))
        page.get_by_role("button", name="Open terminal").click()
        page.wait_for_selector("#term-status[data-state='live']", timeout=60_000)
        _until(page, lambda text: "#" in text or "$" in text)
        assert not page.locator("#term-empty").is_visible()
        # The open session is listed while it runs, without a reload.
        page.wait_for_selector("#term-recordings tbody tr:has-text('running')", timeout=30_000)
        assert page.locator("#term-recordings tbody tr").count() == 1
        assert page.locator("#term-recordings-empty").is_hidden()
        page.locator("#xterm").click()
        page.keyboard.type("cd /tmp && echo where-$(pwd)-$((6*7))")
        page.keyboard.press("Enter")
        _until(page, lambda text: "where-/tmp-42" in text)
        page.keyboard.type("echo size-$(stty size | tr ' ' x)-")
        page.keyboard.press("Enter")
        found = _until(page, lambda text: re.search(r"size-(\d+)x(\d+)-", text))
        assert (
            int(found.group(2)) > 80
        )  # fitted to the 1280 px wide page, not xterm's default 80 columns
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "node-terminal.png"), full_page=True)

        page.get_by_role("button", name="Close terminal").click()
        page.wait_for_selector("#term-status[data-state='ended']", timeout=60_000)
        page.wait_for_selector("#term-recordings tbody tr:has-text('exited')", timeout=30_000)
        assert page.locator("#term-recordings tbody tr").count() == 1
        page.wait_for_selector("#term-recordings button.replay", timeout=30_000)
        page.locator("#term-recordings button.replay").first.click()
        page.wait_for_selector("#term-replay[data-done='true']", timeout=60_000)
        assert "where-/tmp-42" in page.evaluate(REPLAY)
        page.screenshot(path=str(ARTIFACTS / "node-terminal-replay.png"), full_page=True)
        assert errors == []
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "node-terminal-failure.png"), full_page=True)
        print(live_hub.log()[-4000:])  # noqa: T201  # the hub's log explains a failure
        raise
    finally:
        context.close()
        live_hub.stop_process(agent)
