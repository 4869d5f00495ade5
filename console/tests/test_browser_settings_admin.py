"""Settings and Admin in headless Chromium against a real hub: a person clicks through them."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from console.tests.test_browser import ARTIFACTS, browser  # noqa: F401  # fixture
from providers.tests.llm_server import Step
from sessions_app.tests.conftest import API_KEY, llm_server  # noqa: F401  # fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "a-long-test-password"
SETUP = """
from django.contrib.auth.models import Group
from accounts.models import User
admin = User.objects.create_superuser(email="root@example.com", password="PASSWORD")
user = User.objects.create_user(email="alice@example.com", password="PASSWORD")
team = Group.objects.create(name="team")
user.groups.add(team)
Group.objects.create(name="ops")
"""
RULE = """
from django.contrib.auth.models import Group
from accounts.models import User
from mesh import services as mesh_services
from sessions_app.models import ApprovalRule
admin = User.objects.get(email="root@example.com")
user = User.objects.get(email="alice@example.com")
team = Group.objects.get(name="team")
node, _ = mesh_services.node_create(actor=admin, node_id="box", display_name="Box")
mesh_services.node_grant(actor=admin, node=node, group=team)
ApprovalRule.objects.create(owner=user, node=node, tool_name="mesh_terminal",
                            command_patterns=["git status"])
"""
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "test-model",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}
    ],
}


def _page(browser: Any, width: int = 1280, height: int = 800) -> tuple[Any, Any, list[str]]:  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return context, page, errors


def _sign_in(page: Any, base: str, email: str, target: str) -> None:
    page.goto(base + target)
    page.wait_for_url(f"**/console/login/?next={target}")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(base + target)


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def test_settings_page(live_hub, llm_server, browser):  # noqa: F811
    live_hub.manage("shell", "-v", "0", "-c", textwrap.dedent(SETUP.replace("PASSWORD", PASSWORD)))
    live_hub.manage("shell", "-v", "0", "-c", textwrap.dedent(RULE))
    context, page, errors = _page(browser)
    try:
        base = live_hub.http_url
        # First run: no working provider, so the chat list points to Settings.
        _sign_in(page, base, "alice@example.com", "/console/sessions/")
        page.wait_for_selector("#provider-hint:not([hidden])")
        assert page.locator("#nav-admin, nav a:text-is('Admin')").count() == 0
        page.click("#provider-hint a")
        page.wait_for_url("**/console/settings/#providers")
        page.wait_for_selector("#me-llm-effective:has-text('Not working yet')")

        # My LLM provider: pick it, fill it in with the keyboard, save, the key reads masked.
        page.select_option("#me-llm-provider", "openai_compatible")
        assert page.locator("label[data-param='voice']").first.is_hidden()
        page.fill("#me-llm-base_url", llm_server.url + "/v1")
        page.fill("#me-llm-model", "test-model")
        page.focus("#me-llm-api_key")
        page.keyboard.type(API_KEY)
        page.keyboard.press("Enter")
        page.wait_for_selector("#me-llm-status:text-is('Saved.')")
        placeholder = page.get_attribute("#me-llm-api_key", "placeholder")
        assert placeholder.startswith("configured · …" + API_KEY[-4:])
        assert page.input_value("#me-llm-api_key") == ""
        assert page.locator("[data-source-for='model']").first.text_content() == "from mine"
        assert "In use: openai_compatible · test-model" in page.text_content("#me-llm-effective")
        # Where each value comes from: speech falls back to the hub's default backend.
        assert "from default" in page.text_content("#me-tts-form [data-source-for='provider']")

        # Verify: the provider's own answer.
        llm_server.script.append(Step("status", status=200, body=COMPLETION))
        page.click("#me-llm-verify")
        page.wait_for_selector("#me-llm-status:has-text('Works: openai_compatible answered')")
        llm_server.script.append(Step("status", status=401, body={"error": {"message": "bad"}}))
        page.click("#me-llm-verify")
        page.wait_for_selector("#me-llm-status[data-kind='error']")

        # Default approval policy.
        page.select_option("#approval-policy", "auto")
        page.click("#approval-save")
        page.wait_for_selector("#approval-status:has-text('Saved')")
        assert "standing approval rules" in page.text_content("#standing-rules h2").lower()
        # Standing rules: listed, and revoked in one click.
        row = page.locator("#standing-rules-table tbody tr:has-text('git status')")
        row.wait_for()
        assert "box" in row.text_content() and "all my chats" in row.text_content()
        row.locator("button:has-text('Revoke')").click()
        page.wait_for_selector("#standing-rules-empty:not([hidden])")

        # API tokens: created and shown once, listed, revoked.
        page.fill("#token-name", "laptop")
        page.fill("#token-days", "30")
        page.click("#token-create")
        page.wait_for_selector("#token-created:not([hidden])")
        token = page.text_content("#token-value")
        assert token and len(token) > 20
        page.wait_for_selector("#token-table tbody tr:has-text('laptop')")
        _shot(page, "settings")
        page.reload()
        assert token not in page.content()
        page.on("dialog", lambda dialog: dialog.accept())
        page.wait_for_selector("#token-table tbody tr:has-text('laptop')")
        page.click("#token-table button:has-text('Revoke')")
        page.wait_for_selector("#no-tokens:not([hidden])")

        # Password: a wrong current one is refused, then changed.
        page.fill("#current-password", "wrong")
        page.fill("#new-password", "another long passphrase")
        page.fill("#new-password-again", "another long passphrase")
        page.click("#password-save")
        page.wait_for_selector("#password-status:has-text('not your current password')")
        # Chromium logs the (expected) 400 of a wrong password; nothing else may be there.
        assert errors == [
            "Failed to load resource: the server responded with a status of 400 (Bad Request)"
        ]
        errors.clear()
        page.fill("#current-password", PASSWORD)
        page.click("#password-save")
        page.wait_for_selector("#password-status:text-is('Password changed.')")

        # Back on the chat list the hint is gone; non-admins get no admin page.
        page.goto(base + "/console/sessions/")
        page.wait_for_load_state("networkidle")
        assert page.locator("#provider-hint").is_hidden()
        assert page.request.get(base + "/console/admin/").status == 404

        # Phone width: nothing wider than the screen.
        phone = context.new_page()
        phone.set_viewport_size({"width": 390, "height": 844})
        phone.goto(base + "/console/settings/")
        phone.wait_for_selector("#me-llm-effective:has-text('In use')")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 391
        _shot(phone, "settings-phone")
    finally:
        context.close()
    assert errors == []


def test_admin_page(live_hub, browser):  # noqa: F811
    live_hub.manage("shell", "-v", "0", "-c", textwrap.dedent(SETUP.replace("PASSWORD", PASSWORD)))
    context, page, errors = _page(browser)
    try:
        base = live_hub.http_url
        # First run: no nodes, and the node list says how to add one.
        _sign_in(page, base, "root@example.com", "/console/")
        page.wait_for_selector("#add-first-node")
        page.click("#add-first-node")
        page.wait_for_url("**/console/admin/#add-node")
        page.wait_for_selector("#first-node:not([hidden])")

        # Register a node for the team: the install command appears at once.
        page.wait_for_selector("#new-node-groups label:has-text('team')")
        page.fill("#new-node-id", "build-box")
        page.fill("#new-node-name", "Build box")
        page.check("#new-node-groups label:has-text('team') input")
        page.click("#node-create")
        command = page.wait_for_selector("[data-install-command='build-box']:has-text('curl')")
        text = command.text_content()
        assert text.startswith(f"curl -fsSL '{base}/api/v1/install/cil_") or text.startswith(
            "curl -fsSL 'http://127.0.0.1:8000/api/v1/install/cil_"
        )
        assert text.endswith("' | bash")
        node = page.locator("[data-node-id='build-box']")
        assert node.locator(".chip[data-group='team']").count() == 1
        assert page.locator("#first-node").is_hidden()
        assert node.locator("a:has-text('Download bundle')").get_attribute("href") == (
            "/api/v1/nodes/build-box/bundle/"
        )

        # Grants: add ops, remove team.
        node.locator("select[id='grant-build-box']").select_option(label="ops")
        node.locator("[data-action='grant']").click()
        page.wait_for_selector("[data-node-id='build-box'] .chip[data-group='ops']")
        page.click("[data-node-id='build-box'] .chip[data-group='team'] button")
        page.wait_for_selector(
            "[data-node-id='build-box'] .chip[data-group='team']", state="detached"
        )

        # Invite and credential rotation answer in place.
        node.locator("[data-action='invite']").click()
        page.wait_for_selector("[data-node-id='build-box'] code:has-text('cni_')")
        node.locator("[data-action='rotate']").click()
        page.wait_for_selector("[data-node-id='build-box'] .status:has-text('Rotat')")

        # Sandbox policy: edit, check a command against the draft, save.
        page.select_option("#policy-build-box-mode", "strict")
        page.fill("#policy-build-box-allowed_commands", "echo\nls")
        page.fill("#policy-build-box-check", "echo hi | cat")
        node.locator("[data-action='check']").click()
        verdict = page.wait_for_selector("[data-node-id='build-box'] .verdict:not([hidden])")
        assert verdict.get_attribute("data-allowed") == "false"
        assert "'cat' is not in the node's allowed commands" in verdict.text_content()
        page.fill("#policy-build-box-check", "echo hi && ls")
        node.locator("[data-action='check']").click()
        page.wait_for_selector("[data-node-id='build-box'] .verdict[data-allowed='true']")
        node.locator("[data-action='save-policy']").click()
        page.wait_for_selector("[data-node-id='build-box'] .status:has-text('Saved')")
        _shot(page, "admin")

        # System provider defaults, with a lock.
        page.select_option("#system-tts-provider", "espeak")
        page.check("#system-tts-lock-provider")
        page.click("#system-tts-save")
        page.wait_for_selector("#system-tts-status:text-is('Saved.')")

        # The audit log, filtered by node and by action.
        page.fill("#audit-node", "build-box")
        page.click("#audit-apply")
        page.wait_for_selector("#audit-table tr[data-action='node.install_link_issued']")
        actions = set(
            page.locator("#audit-table tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.action)"
            )
        )
        assert {"node.grant", "node.revoke", "node.invite", "node.install_link_issued"} <= actions
        assert all(a.startswith("node.") for a in actions)
        page.fill("#audit-action", "preferences.")
        page.fill("#audit-node", "")
        page.click("#audit-apply")
        page.wait_for_selector(
            "#audit-table tbody tr:not([data-action^='preferences.'])", state="detached"
        )
        assert page.locator("#audit-table tbody tr[data-action^='preferences.']").count() >= 1
        assert page.locator("a[href='/admin/accounts/user/']").count() == 1

        phone = context.new_page()
        phone.set_viewport_size({"width": 390, "height": 844})
        phone.goto(base + "/console/admin/")
        phone.wait_for_selector("[data-node-id='build-box']")
        phone.click("[data-node-id='build-box'] summary")
        phone.wait_for_selector("[data-node-id='build-box'] [data-action='install-link']")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 391
        _shot(phone, "admin-phone")
    finally:
        context.close()
    assert errors == []
