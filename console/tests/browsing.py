"""How the browser tests make their world and their page: one seed of the hub (an admin, alice in
group "team", node "live" granted, alice's model layer), one headless Chromium, one page set-up
that collects the page's errors, one sign-in."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.tests.conftest import API_KEY

NO_MODEL = "http://127.0.0.1:9/v1"  # nothing listens: for pages that never ask the model

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "a-long-test-password"

SETUP = """
import json
from django.contrib.auth.models import Group
from accounts.models import User
from mesh import services
from preferences.services import layer_update

admin = User.objects.create_superuser(email="root@example.com", password="x-x-x-x-x-x")
user = User.objects.create_user(email="alice@example.com", password="PASSWORD")
team = Group.objects.create(name="team")
user.groups.add(team)
node, invite = services.node_create(actor=admin, node_id="live", display_name="Live box")
services.node_grant(actor=admin, node=node, group=team)
layer_update(actor=user, scope="user", kind="llm", user=user,
             data={"provider": "openai_compatible", "base_url": "BASE_URL",
                   "api_key": "API_KEY", "model": "test-model"})
print(json.dumps({"invite": invite}))
"""


def seed_console(live_hub: Any, llm_url: str = NO_MODEL, *, then: str = "") -> dict[str, Any]:
    """SETUP in the live hub (its model at `llm_url`), then the code `then` in the same
    `manage.py shell` (one process start, not two). Returns the JSON objects the code printed,
    merged: SETUP's {"invite": node "live"'s invite} and whatever `then` prints."""
    code = SETUP.replace("BASE_URL", llm_url).replace("API_KEY", API_KEY)
    code = textwrap.dedent(code.replace("PASSWORD", PASSWORD)) + textwrap.dedent(then)
    out = live_hub.manage("shell", "-v", "0", "-c", code)
    printed: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("{"):
            printed.update(json.loads(line))
    return printed


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run scripts/system-packages.sh test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


def console_error(msg: Any, errors: list[str]) -> None:
    """Errors in the browser console; the browser's own favicon probe is not the page's."""
    if msg.type == "error" and not (msg.location or {}).get("url", "").endswith("/favicon.ico"):
        errors.append(f"{msg.text} at {(msg.location or {}).get('url', '')}")


def open_page(
    browser: Any, *, width: int = 1280, height: int = 900, console: bool = True, **options: Any
) -> tuple[Any, Any, list[str]]:
    """A new context and page (30 s default timeout); returns (context, page, errors), errors
    collecting the page's uncaught exceptions and, with `console`, its console errors."""
    context = browser.new_context(viewport={"width": width, "height": height}, **options)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if console:
        page.on("console", lambda msg: console_error(msg, errors))
    return context, page, errors


def sign_in(page: Any, base: str) -> None:
    page.goto(base + "/console/login/")
    page.fill("#email", "alice@example.com")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(base + "/console/")


def page_sleep(page: Any) -> Any:
    """`wait_until`'s sleep for a page: the page's own timer, so that its events keep running."""
    return lambda seconds: page.wait_for_timeout(seconds * 1000)
