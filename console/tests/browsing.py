"""How the browser tests make their world and their page: the live hub's one seed (an admin,
alice in group "team", node "live" granted, alice's model layer), one headless Chromium, one page
set-up that collects the page's errors, one sign-in."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def seed_console(live_hub: Any, llm_url: str = NO_MODEL, *, then: str = "") -> dict[str, Any]:
    """The live hub's usual world (`LiveHub.seed`) with alice's model at `llm_url` and alice
    signing in with PASSWORD, then the code `then`, all in one `manage.py shell`."""
    return dict(live_hub.seed(llm_url, alice_password=PASSWORD, then=then))


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


@contextlib.contextmanager
def failure_report(page: Any, live_hub: Any, name: str, *, log_tail: int = 4000) -> Iterator[None]:
    """On a failure inside: a full-page screenshot in ARTIFACTS/`name`-failure.png and the tail
    of the hub's log printed (pytest shows it with the failure), then the error goes on."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"), full_page=True)
        print(live_hub.log()[-log_tail:])  # noqa: T201  # the hub's log explains a failure
        raise
