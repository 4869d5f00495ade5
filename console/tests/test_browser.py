"""The consoles in headless Chromium: a real hub process, a real agent, a scripted model."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from console.tests.browsing import (  # noqa: F401  # names other browser tests import from here
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    PASSWORD,
    browser,
    open_page,
    page_sleep,
    seed_console,
)
from cortex.testing import wait_until
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.tests.conftest import llm_server  # noqa: F401  # fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REVOKE = """
from django.contrib.auth.models import Group
from accounts.models import User
from mesh import services
from mesh.models import Node

admin = User.objects.get(email="root@example.com")
services.node_revoke(actor=admin, node=Node.objects.get(node_id="live"),
                     group=Group.objects.get(name="team"))
"""

# Output that must stay inert text: a script tag, an image with a handler, ANSI colours and
# cursor movement, and a 20,000-character line.
HOSTILE = (
    "printf '<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">\\n'; "
    "printf '\\033[31mRED\\033[0m plain \\033[2K\\033[1;32mBOLDGREEN\\033[0m\\n'; "
    "head -c 20000 /dev/zero | tr '\\0' x; echo; echo END-OF-HOSTILE"
)


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def test_sign_in_watch_run_and_chat(live_hub, llm_server, browser, tmp_path):  # noqa: F811
    invite = seed_console(live_hub, llm_server.url + "/v1")["invite"]
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    context, page, errors = open_page(browser, console=False)
    try:
        # Sign in: the console sends an anonymous visitor to its sign-in page and back.
        page.goto(live_hub.http_url + "/console/")
        page.wait_for_url("**/console/login/?next=/console/")
        page.fill("#email", "alice@example.com")
        page.fill("#password", "wrong password")
        page.click("#login-submit")
        page.wait_for_selector("#login-error:not([hidden])")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(live_hub.http_url + "/console/")

        # Node list: the node comes online live, its charts get points.
        page.wait_for_selector('[data-node-id="live"] .badge[data-status="online"]', timeout=60_000)
        card = page.locator('[data-node-id="live"]')
        wait_until(  # one point per 2 s at most
            lambda: int(card.get_attribute("data-points") or 0) >= 3,
            timeout=30,
            interval=0.25,
            sleep=page_sleep(page),
            message="the charts got no live points",
        )
        assert card.locator(".chart-label").first.text_content().startswith("CPU ")
        assert card.locator(".chart .uplot canvas").count() == 2  # uPlot sparklines
        _shot(page, "nodes")

        # Node page: run `echo hello`, see hello.
        page.click('[data-node-id="live"] h2 a')
        page.wait_for_url("**/console/nodes/live/")
        page.wait_for_selector("#run-form:not([hidden])")
        page.fill("#command", "echo hello")
        page.click("#run")
        hello = page.wait_for_selector(".task .output:text-is('hello')")
        assert hello.text_content() == "hello\n"
        page.wait_for_selector('.task .badge[data-status="succeeded"]')

        # Hostile output stays text.
        page.fill("#command", HOSTILE)
        page.click("#run")
        page.wait_for_selector(".task .output:has-text('END-OF-HOSTILE')")
        last = page.locator(".task").last
        text = last.locator(".output").text_content()
        assert text.startswith(
            '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">\n'
        )
        assert "RED plain BOLDGREEN\n" in text
        assert "x" * 20000 + "\nEND-OF-HOSTILE" in text
        assert "\x1b" not in text
        assert last.locator(".output span.fg1").text_content() == "RED"
        assert last.locator(".output span.fg2.b").text_content() == "BOLDGREEN"
        assert page.evaluate("window.__pwned") is None
        assert page.locator(".terminal script, .terminal img").count() == 0
        assert page.evaluate(
            "(() => { const t = document.querySelector('.terminal');"
            " return t.scrollWidth <= t.clientWidth + 1; })()"
        )  # the long line wraps instead of widening the page
        _shot(page, "node")
        page.evaluate("document.querySelector('.terminal').scrollTop = 0")
        _shot(page, "node-top")

        # A flood: each batch's live frame carries its newest bytes, so the end always shows;
        # what a frame leaves out is marked (how much depends on batching, so only the form).
        page.fill("#command", "head -c 1000000 /dev/zero | tr '\\0' y; echo; echo END-OF-FLOOD")
        page.click("#run")
        page.wait_for_selector(".task .output:has-text('END-OF-FLOOD')", timeout=60_000)
        flood = page.locator(".task").last.locator(".output")
        assert flood.text_content().endswith("yyyy\nEND-OF-FLOOD\n")
        for note in flood.locator(".skipped").all_text_contents():
            assert re.fullmatch(r"\n\[… [0-9.]+ (B|KiB|MiB) not shown live …\]\n", note)

        # A sensitive command: the page asks first; "Don't run" sends nothing, "Run it" runs it.
        sensitive = "rm -f nothing-here.txt; echo removed-it"
        before = page.locator(".task").count()
        page.fill("#command", sensitive)
        page.click("#run")
        page.wait_for_selector("#confirm-dialog[open]")
        assert page.locator("#confirm-message").text_content() == (
            "'rm' is sensitive on this node and needs confirmation: "
            'send the request again with "confirm": true to run it.'
        )
        assert page.locator("#confirm-command").text_content() == sensitive
        _shot(page, "node-confirm")
        page.click("#confirm-cancel")
        page.wait_for_selector(f"#run-error:text-is('Not run: {sensitive}')")
        assert page.locator(".task").count() == before
        page.fill("#command", sensitive)
        page.click("#run")
        page.wait_for_selector("#confirm-dialog[open]")
        page.click("#confirm-run")
        page.wait_for_selector(".task .output:text-is('removed-it')")
        assert page.locator(".task").count() == before + 1
        page.wait_for_selector('.task:last-child .badge[data-status="succeeded"]')

        # Chat: the model asks to run a command, the user approves in the page, output appears.
        page.goto(live_hub.http_url + "/console/sessions/")
        page.click("#new-session")
        page.wait_for_url("**/console/sessions/*/")
        page.wait_for_selector("#attach-node option[value='live']", state="attached")
        page.select_option("#attach-node", "live")
        page.wait_for_selector("#attached .badge:text-is('live')")
        llm_server.add(
            openai_tool_call(
                [
                    (
                        "call_1",
                        "mesh_terminal",
                        '{"command": "echo from-the-model", "node_id": "live"}',
                    )
                ],
                text="Let me check.",
            )
        )
        llm_server.add(openai_text(["The node ", "says from-the-model."], delay=0.05))
        page.fill("#chat-input", "What does the node say?")
        page.click("#send")
        page.wait_for_selector(".msg.user .text:text-is('What does the node say?')")
        approve = page.wait_for_selector(".tool-call button.approve", timeout=60_000)
        _shot(page, "session-approval")
        approve.click()
        page.wait_for_selector(".tool-call .output:has-text('from-the-model')", timeout=60_000)
        page.wait_for_selector(".msg.assistant .text p:text-is('The node says from-the-model.')")
        assert page.locator(".tool-call strong").first.text_content() == "mesh_terminal"
        _shot(page, "session")

        # Revoked while watching (from another process: only the periodic re-check sees it).
        page.goto(live_hub.http_url + "/console/nodes/live/")
        page.wait_for_selector("#live-state[data-state='live']")
        live_hub.manage("shell", "-c", REVOKE)
        started = time.monotonic()
        page.wait_for_selector("#live-state[data-state='no access']", timeout=10_000)
        assert time.monotonic() - started < 5
        assert page.locator("#banner").text_content() == (
            "You no longer have access to this page's data."
        )
        assert errors == []
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-failure.png"), full_page=True)
        print(live_hub.log()[-4000:])  # noqa: T201  # the hub's log explains a failure
        print((tmp_path / "agent.log").read_text(errors="replace")[-2000:])  # noqa: T201
        raise
    finally:
        context.close()
        live_hub.stop_process(agent)
