"""The browser skill (navigate, screenshot, page text), present only with Playwright + Chromium."""

from __future__ import annotations

import base64
import glob
import importlib.util
import os
import shutil
from typing import Any

ACTIONS = ("navigate", "screenshot", "text")
MAX_TEXT = 200_000
NAV_TIMEOUT_MS = 30_000


class BrowserError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _chromium_executable() -> str | None:
    """A Chromium that Playwright can drive: its own download, or a system one."""
    roots = [os.environ.get("PLAYWRIGHT_BROWSERS_PATH", ""), "~/.cache/ms-playwright"]
    roots.append("~/Library/Caches/ms-playwright")
    for root in filter(None, roots):
        pattern = os.path.join(os.path.expanduser(root), "chromium*", "*", "chrome*")
        for candidate in sorted(glob.glob(pattern)):
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_available() -> bool:
    """True only when Playwright is importable and a Chromium executable exists."""
    return importlib.util.find_spec("playwright") is not None and _chromium_executable() is not None


async def run_browser(payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Open the URL in headless Chromium and perform the action."""
    action = payload.get("action")
    if action not in ACTIONS:
        raise BrowserError("invalid_action", f"action must be one of {', '.join(ACTIONS)}")
    url = payload.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise BrowserError("invalid_input", "url must be an http(s) URL")
    from playwright.async_api import async_playwright  # only where the capability exists

    executable = _chromium_executable()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            headless=True,
            executable_path=executable
            if executable and "ms-playwright" not in executable
            else None,
        )
        try:
            page = await browser.new_page()
            response = await page.goto(url, timeout=min(NAV_TIMEOUT_MS, int(timeout * 1000)))
            result: dict[str, Any] = {
                "url": page.url,
                "title": await page.title(),
                "status": response.status if response else None,
            }
            if action == "text":
                text = await page.inner_text("body")
                result["text"] = text[:MAX_TEXT]
                result["truncated"] = len(text) > MAX_TEXT
            elif action == "screenshot":
                png = await page.screenshot(full_page=False)
                result["png_base64"] = base64.b64encode(png).decode()
            return result
        finally:
            await browser.close()
