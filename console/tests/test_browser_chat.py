"""The chat page in headless Chromium: a real hub, a real agent, the scripted model on loopback.

A person picks a model from the allowed ones, switches the approval policy, reads a Markdown
answer (hostile HTML in it stays text and runs nothing), answers approvals (always allow, once,
deny) and sees who decided, records a voice message and listens to an answer."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from console.tests.browsing import (  # noqa: F401  # names other browser tests import from here
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    console_error,
    failure_report,
    open_page,
    seed_console,
    sign_in,
)
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.tests.conftest import API_KEY, llm_server  # noqa: F401  # fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIMITS = """
from django.contrib.auth.models import Group
from accounts.models import User
from preferences.services import layer_update

admin = User.objects.get(email="root@example.com")
layer_update(actor=admin, scope="group", kind="llm", group=Group.objects.get(name="team"),
             data={"allowed_models": ["test-model", "other-model"]})
"""

MARKDOWN = (
    "# Disk report\n\n"
    "The disk is **fine** and _mostly_ empty; run `df -h` to see.\n\n"
    "- one item\n- two [docs](https://example.com/docs) and [bad](javascript:alert(1))\n\n"
    "```python\nprint('<b>not bold</b>')\n```\n\n"
    "<img src=x onerror=alert(1)> <script>alert(2)</script>"
)


def terminal_call(call_id: str, command: str) -> Any:
    arguments = json.dumps({"command": command, "node_id": "live"})
    return openai_tool_call([(call_id, "mesh_terminal", arguments)], text="Let me check.")


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"chat-{name}.png"), full_page=True)


def api(page: Any, path: str) -> Any:
    return page.evaluate("async (p) => (await fetch(p, {credentials: 'same-origin'})).json()", path)


@pytest.fixture
def voice_wav(tmp_path) -> str:
    path = tmp_path / "voice.wav"
    subprocess.run(  # noqa: S603  # fixed argv: a recording for the fake microphone
        ["/usr/bin/espeak-ng", "-v", "en-us", "-w", str(path), "hello world. open the door."],
        check=True,
    )
    return str(path)


def test_chat_page_as_a_person_uses_it(live_hub, llm_server, browser_args, tmp_path):  # noqa: F811
    invite = seed_console(live_hub, llm_server.url + "/v1", then=LIMITS)["invite"]
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    context, page, errors = open_page(browser_args, height=800)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    base = live_hub.http_url
    try:
        with failure_report(page, live_hub, "chat"):
            sign_in(page, base)
            page.goto(base + "/console/sessions/")
            page.click("#new-session")
            page.wait_for_url("**/console/sessions/*/")
            sid = page.url.rstrip("/").rsplit("/", 1)[-1]

            # An empty chat says how to attach a node.
            page.wait_for_selector("#chat-empty:not([hidden]) #chat-empty-nodes:not([hidden])")
            assert "Attach a node" in page.locator("#chat-empty-nodes").text_content()
            shot(page, "empty")

            # The model picker offers only the allowed models; a choice sticks to the session.
            page.wait_for_selector("#model-select-label:not([hidden])")
            options = page.locator("#model-select option").all_text_contents()
            assert options == ["default (your settings)", "other-model", "test-model"]
            page.select_option("#model-select", "other-model")
            page.wait_for_selector("#model-note:has-text('other-model')")
            assert api(page, f"/api/v1/sessions/{sid}/")["model"] == "other-model"
            page.select_option("#model-select", "")
            page.wait_for_selector("#model-note:has-text('test-model')")

            # The approval policy switch.
            page.get_by_label("Tool calls").select_option("auto")
            page.wait_for_timeout(300)
            assert api(page, f"/api/v1/sessions/{sid}/")["approval_policy"] == "auto"
            page.get_by_label("Tool calls").select_option("ask")
            page.wait_for_timeout(300)
            assert api(page, f"/api/v1/sessions/{sid}/")["approval_policy"] == "ask"

            # Markdown answer; hostile HTML shows as text, nothing runs; usage is counted.
            llm_server.add(openai_text([MARKDOWN[:40], MARKDOWN[40:]], usage=(11, 7)))
            page.fill("#chat-input", "How is the disk?")
            page.keyboard.press("Enter")
            answer = page.locator(".msg.assistant").last
            page.wait_for_selector(".msg.assistant[data-status='done'] .text h3")
            text = answer.locator(".text")
            assert text.locator("h3").text_content() == "Disk report"
            assert text.locator("strong").text_content() == "fine"
            assert text.locator("em").text_content() == "mostly"
            assert text.locator("p code").text_content() == "df -h"
            assert text.locator("li").all_text_contents() == [
                "one item",
                "two docs and [bad](javascript:alert(1))",
            ]
            link = text.locator("a")
            assert link.count() == 1
            assert link.get_attribute("href") == "https://example.com/docs"
            assert link.get_attribute("rel") == "noopener noreferrer nofollow"
            assert text.locator("pre code").text_content() == "print('<b>not bold</b>')"
            assert "<img src=x onerror=alert(1)> <script>alert(2)</script>" in text.text_content()
            assert page.locator(".chat img, .chat script, .chat b").count() == 0
            page.wait_for_selector("#usage[data-total='18']")
            assert page.locator("#usage").text_content() == "Tokens: 11 in · 7 out · 18 total"
            assert dialogs == []
            shot(page, "markdown")

            # Attach the node; the model asks to run a command: always allow it in this chat.
            page.get_by_label("Attach a node").select_option("live")
            page.wait_for_selector("#attached .badge:text-is('live')")
            llm_server.add(terminal_call("call_1", "echo from-the-model"))
            llm_server.add(openai_text(["The node says from-the-model."]))
            page.fill("#chat-input", "What does the node say?")
            page.click("#send")
            page.wait_for_selector(".tool-call button.always", timeout=60_000)
            shot(page, "approval")
            page.click(".tool-call button.always")
            patterns = page.get_by_label("Always allow mesh_terminal on live for commands matching")
            assert patterns.input_value() == "echo from-the-model"
            page.get_by_label("in this chat").check()
            page.click("button.confirm-always")
            decision = page.wait_for_selector(".decision[data-status='approved']")
            assert decision.text_content().startswith("Allowed by alice@example.com at ")
            page.wait_for_selector(".tool-call .output:has-text('from-the-model')", timeout=60_000)
            page.wait_for_selector(".msg.assistant .text:has-text('The node says from-the-model.')")
            rules = api(page, "/api/v1/approval-rules/")["results"]
            assert [(r["scope"], r["command_patterns"]) for r in rules] == [
                ("session", ["echo from-the-model"])
            ]

            # The same command again runs without a question.
            llm_server.add(terminal_call("call_2", "echo from-the-model"))
            llm_server.add(openai_text(["Same again."]))
            page.fill("#chat-input", "Again?")
            page.click("#send")
            page.wait_for_selector(".tool-call .by-rule", timeout=60_000)
            page.wait_for_selector(".msg.assistant .text:has-text('Same again.')")

            # Another command: deny it.
            llm_server.add(terminal_call("call_3", "uptime"))
            llm_server.add(openai_text(["Fine, I won't."]))
            page.fill("#chat-input", "Uptime?")
            page.click("#send")
            page.wait_for_selector(".tool-call button.deny", timeout=60_000).click()
            page.wait_for_selector(".decision[data-status='denied']")
            page.wait_for_selector('.msg.assistant .text:has-text("Fine, I won\'t.")')

            # After a reload the decisions still say who decided.
            page.reload()
            page.wait_for_selector(".decision[data-status='denied']")
            decided = page.locator(".decision").all_text_contents()
            assert decided[0].startswith("Allowed by alice@example.com at ")
            assert decided[-1].startswith("Denied by alice@example.com at ")
            assert page.locator(".tool-call .by-rule").count() == 1
            shot(page, "decisions")

            # Listen to an answer through the user's speech provider (espeak by default).
            page.locator(".msg.assistant button.listen").last.click()
            page.wait_for_selector(".msg.assistant[data-spoken='1']")

            # A voice message: the fake microphone plays an espeak recording.
            llm_server.add(openai_text(["I heard you."]))
            page.click("#record")
            page.wait_for_selector("#record[aria-pressed='true']")
            page.wait_for_timeout(2500)
            page.click("#record")
            page.wait_for_selector(".msg.user audio.recording", timeout=60_000)
            page.wait_for_selector(".msg.assistant .text:has-text('I heard you.')")
            spoken = page.locator(".msg.user").last.locator(".text").text_content()
            assert spoken.strip()
            shot(page, "voice")

            # Phone width: the controls stay reachable.
            page.set_viewport_size({"width": 390, "height": 844})
            shot(page, "phone")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            assert errors == []
            assert dialogs == []
    finally:
        context.close()
        live_hub.stop_process(agent)


@pytest.fixture
def browser_args(voice_wav) -> Any:
    from playwright.sync_api import sync_playwright

    args = [
        *ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={voice_wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield instance
        finally:
            instance.close()
