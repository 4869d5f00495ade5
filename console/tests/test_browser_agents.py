"""The agents page in headless Chromium: create an agent, run it now, see it park for an
approval (live on /ws/me/), approve in its chat, see the run succeed; cancel a parked run;
pause and resume."""

from __future__ import annotations

import pytest

from console.tests.browsing import ARTIFACTS, browser, open_page, seed_console, sign_in  # noqa: F401
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.tests.conftest import API_KEY, llm_server  # noqa: F401  # fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# The page needs the scheduler in the hub process.
@pytest.mark.live_hub_env(CORTEX_AGENT_SCHEDULER="1", CORTEX_AGENT_MIN_INTERVAL_S="1")
def test_agents_page(live_hub, llm_server, browser, tmp_path):  # noqa: F811
    invite = seed_console(live_hub, llm_server.url + "/v1")["invite"]
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    llm_server.add(
        openai_tool_call(
            [("c1", "mesh_terminal", '{"node_id": "live", "command": "echo agent-was-here"}')]
        )
    )
    llm_server.add(openai_text(["Done: agent-was-here."]))
    context, page, errors = open_page(browser)
    base = live_hub.http_url
    try:
        sign_in(page, base)
        page.click("nav a:text-is('Agents')")
        page.wait_for_url(base + "/console/agents/")
        page.wait_for_selector("#no-agents:not([hidden])")
        page.wait_for_selector("#live-state[data-state='live']")

        page.click("#new-agent-panel summary")
        page.get_by_label("Name").fill("nightly check")
        page.select_option("#agent-trigger", "interval")
        page.fill("#agent-seconds", "3600")
        page.get_by_label("Prompt").fill("Say where you are.")
        page.wait_for_selector("#agent-nodes option[value='live']", state="attached")
        page.get_by_label("Nodes").select_option("live")
        page.click("#agent-create")
        page.wait_for_selector("#agent-secret:not([hidden])")
        assert len(page.locator("#agent-secret-value").text_content()) >= 40
        card = page.locator(".agent", has_text="nightly check")
        assert "every 1 h" in card.locator("p.schedule").text_content()
        assert card.locator(".next-fire").text_content() not in ("—", "paused")

        # Run now: the model asks for a command no rule covers, so the run waits for me.
        card.locator("button.run-now").click()
        alert = page.wait_for_selector("#approval-alerts .hint", timeout=60_000)
        assert "mesh_terminal" in alert.text_content()
        page.wait_for_selector('.agent .badge[data-status="awaiting_approval"]')
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "agents-awaiting.png"), full_page=True)

        # The alert is there after a reload too (read from the runs, not only from the frame).
        page.reload()
        page.wait_for_selector("#approval-alerts .hint a")
        page.click("#approval-alerts a")
        page.wait_for_url("**/console/sessions/*/")
        page.wait_for_selector(".tool-call button.approve", timeout=60_000).click()
        page.wait_for_selector("text=Done: agent-was-here.", timeout=60_000)

        page.goto(base + "/console/agents/")
        page.wait_for_selector('.agent .badge[data-status="succeeded"]', timeout=60_000)
        page.locator(".agent .run-chat").first.wait_for()

        # A second run parks too; cancelling it from its row ends it at once.
        llm_server.add(
            openai_tool_call(
                [("c2", "mesh_terminal", '{"node_id": "live", "command": "echo not-again"}')]
            )
        )
        llm_server.add(openai_text(["Should never be said."]))
        page.locator(".agent button.run-now").click()
        parked = page.locator("tr:has(.badge[data-status='awaiting_approval'])")
        parked.wait_for(timeout=60_000)
        parked.get_by_role("button", name="Cancel run").click()
        page.wait_for_selector('.agent .badge[data-status="cancelled"]', timeout=60_000)
        page.wait_for_selector("text=cancelled.")
        assert page.locator(".agent .cancel-run").count() == 0
        assert page.locator('.agent .badge[data-status="succeeded"]').count() == 1

        # Pause and resume.
        page.locator(".agent button.pause").click()
        page.wait_for_selector(".agent .next-fire:text-is('paused')")
        page.locator(".agent button.resume").click()
        page.wait_for_selector(".agent button.pause")
        page.screenshot(path=str(ARTIFACTS / "agents.png"), full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "agents-phone.png"), full_page=True)
        assert errors == []
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "agents-failure.png"), full_page=True)
        print(live_hub.log()[-5000:])  # noqa: T201  # the hub's log explains a failure
        raise
    finally:
        context.close()
        live_hub.stop_process(agent)
