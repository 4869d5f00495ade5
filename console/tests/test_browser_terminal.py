"""The node page's terminal in headless Chromium: xterm.js typing into a real PTY on a real
agent through the hub, and the replay of the recorded session."""

from __future__ import annotations

import re

import pytest

from console.tests.browsing import (  # noqa: F401  # browser: fixture
    ARTIFACTS,
    browser,
    open_page,
    page_sleep,
    seed_console,
    sign_in,
)
from cortex.testing import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREEN = "document.querySelector('#xterm .xterm-rows')?.innerText || ''"


def _until(page, predicate, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    """Poll the terminal's screen text (the page's CSP forbids wait_for_function's eval)."""
    return wait_until(
        lambda: predicate(page.evaluate(SCREEN)),
        timeout=timeout,
        sleep=page_sleep(page),
        message=lambda: page.evaluate(SCREEN),
    )


REPLAY = "document.querySelector('#term-replay .xterm-rows')?.innerText || ''"


def test_node_terminal_types_sees_output_and_replays(live_hub, browser, tmp_path):  # noqa: F811
    invite = seed_console(live_hub)["invite"]
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    context, page, errors = open_page(browser)
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
