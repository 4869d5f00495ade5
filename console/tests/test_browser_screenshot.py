"""A browser screenshot shows in the chat as an image: a real hub, a real agent driving Debian's
Chromium against a page served on loopback, the scripted model on loopback asking for it.

The page must load the stored PNG (`naturalWidth > 0`), fit it in the chat column, keep it
after a reload, and log no error in the browser console.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from console.tests.browsing import ARTIFACTS, failure_report, open_page, seed_console, sign_in
from console.tests.test_browser import browser  # noqa: F401  # fixture
from providers.tests.llm_server import Step, openai_text, openai_tool_call
from sessions_app.tests.conftest import API_KEY, llm_server  # noqa: F401  # fixture
from tools.tests.test_browser_live import BROWSER_NODE, site  # noqa: F401  # fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _browser_call(call_id: str, **arguments: str) -> Step:
    return openai_tool_call([(call_id, "browser", json.dumps({"node_id": "live", **arguments}))])


def image_src(page: Any, selector: str) -> str:
    return page.eval_on_selector(selector, "(i) => i.getAttribute('src')")


def test_a_screenshot_shows_in_the_chat(live_hub, llm_server, browser, site, tmp_path):  # noqa: F811
    invite = seed_console(live_hub, llm_server.url + "/v1", then=BROWSER_NODE)["invite"]
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    llm_server.add(_browser_call("call_nav", action="navigate", url=site + "/"))
    llm_server.add(_browser_call("call_shot", action="screenshot"))
    llm_server.add(openai_text(["Here is the page."]))

    context, page, errors = open_page(browser)
    base = live_hub.http_url
    try:
        with failure_report(page, live_hub, "chat-screenshot", log_tail=5000):
            sign_in(page, base)
            page.goto(base + "/console/sessions/")
            page.click("#new-session")
            page.wait_for_url("**/console/sessions/*/")
            page.wait_for_selector("#attach-node option[value='live']", state="attached")
            page.get_by_label("Attach a node").select_option("live")
            page.wait_for_selector("#attached .badge:text-is('live')")
            page.fill("#chat-input", "Show me the order form.")
            page.click("#send")

            image = "[data-tool-call-id='call_shot'] img.screenshot"
            page.wait_for_selector(
                ".msg.assistant .text:has-text('Here is the page.')", timeout=120_000
            )
            page.wait_for_selector(image, timeout=60_000)
            page.wait_for_function(
                "(s) => { const i = document.querySelector(s); return i && i.complete && "
                "i.naturalWidth > 0; }",
                arg=image,
            )
            size = page.eval_on_selector(
                image,
                "(i) => ({natural: i.naturalWidth, shown: i.getBoundingClientRect().width, "
                "height: i.getBoundingClientRect().height, "
                "column: i.closest('.tool-call').getBoundingClientRect().width, alt: i.alt})",
            )
            assert size["natural"] > 0
            assert 0 < size["shown"] <= min(size["column"], 640), size  # a preview in the column
            assert size["height"] <= 360, size
            link = page.locator("[data-tool-call-id='call_shot'] a.screenshot-link")
            assert link.get_attribute("href") == image_src(page, image)  # opens full size
            assert link.get_attribute("target") == "_blank"
            # The answer after the image is in view: the chat scrolled once the image had loaded.
            page.wait_for_function(
                "() => { const c = document.getElementById('chat').getBoundingClientRect(); "
                "const t = [...document.querySelectorAll('.msg.assistant .text')].pop()"
                ".getBoundingClientRect(); return t.top >= c.top && t.bottom <= c.bottom + 1; }"
            )
            assert size["alt"] == f"Screenshot of {site}/"
            # Only the screenshot call has an image; the navigation has none.
            assert page.locator("img.screenshot").count() == 1
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "chat-screenshot.png"), full_page=True)

            # After a reload the image is rebuilt from the history.
            page.reload()
            page.wait_for_selector(".msg.assistant .text:has-text('Here is the page.')")
            page.wait_for_function(
                "(s) => { const i = document.querySelector(s); return i && i.complete && "
                "i.naturalWidth > 0; }",
                arg=image,
            )
            assert page.locator("img.screenshot").count() == 1
            assert errors == []
    finally:
        context.close()
        live_hub.stop_process(agent)
