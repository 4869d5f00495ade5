"""The node page in headless Chromium: live CPU and memory charts and the task history with
status filters, against a real hub and a real agent."""

from __future__ import annotations

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


def test_node_page_charts_and_task_history(live_hub, browser, tmp_path):  # noqa: F811
    invite = seed_console(live_hub)["invite"]
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    context, page, errors = open_page(browser, height=800)
    base = live_hub.http_url
    try:
        sign_in(page, base)
        page.goto(base + "/console/nodes/live/")
        page.wait_for_selector("#run-form:not([hidden])", timeout=60_000)

        # Charts get live points (one per heartbeat).
        wait_until(
            lambda: int(page.locator(".panels").get_attribute("data-points") or 0) >= 2,
            timeout=60,
            interval=0.25,
            sleep=page_sleep(page),
            message="the charts got no live points",
        )
        # uPlot draws each chart (console/package.json pins it; no hand-drawn canvas code).
        assert page.locator("#cpu-chart .uplot canvas").count() == 1
        assert page.locator("#mem-chart .uplot canvas").count() == 1
        assert page.evaluate("typeof uPlot") == "function"
        assert page.locator("#cpu-now").text_content().endswith("%")
        assert page.locator("#mem-now").text_content().endswith("%")

        # Two commands, one fails; both land in the history.
        for command in ("echo history-ok", "false"):
            page.fill("#command", command)
            page.keyboard.press("Enter")
            page.wait_for_selector(f"#task-history td.cmd:text-is('{command}')")
        page.wait_for_selector("#task-history tr[data-status='failed']")
        page.wait_for_selector("#task-history tr[data-status='succeeded']")

        # Filter by status with the keyboard-reachable checkboxes.
        page.get_by_label("failed").check()
        page.wait_for_selector("#task-history tr[data-status='succeeded']", state="detached")
        rows = page.locator("#task-history tbody tr")
        assert rows.count() == 1
        assert rows.first.locator("td.cmd").text_content() == "false"
        page.get_by_label("succeeded").check()
        page.wait_for_selector("#task-history tr[data-status='succeeded']")
        page.get_by_label("failed").uncheck()
        page.get_by_label("succeeded").uncheck()
        page.get_by_label("timed out").check()
        page.wait_for_selector("#task-history-empty:not([hidden])")
        page.get_by_label("timed out").uncheck()
        page.wait_for_selector("#task-history tr[data-status='failed']")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "node-page.png"), full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "node-page-phone.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert errors == []
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "node-failure.png"), full_page=True)
        print(live_hub.log()[-4000:])  # noqa: T201  # the hub's log explains a failure
        raise
    finally:
        context.close()
        live_hub.stop_process(agent)
