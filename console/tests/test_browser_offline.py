"""Every page of the console, the admin and the API docs works with the network cut.

Headless Chromium visits each page (the console's routes and the admin's changelists are read
from the running URL configuration and admin registry, so pages added later are crawled too)
as an admin and as a plain user, with every request to a host other than the hub aborted. Each
request the browser made, each asset the DOM names and each WebSocket is same-origin, none was
aborted, the browser console shows no error, and the API docs render Swagger UI's operations.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.urls import URLPattern, URLResolver

from console.tests.browsing import ARTIFACTS, browser, console_error, seed_console, sign_in  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_EMAIL, ADMIN_PASSWORD = "root@example.com", "x-x-x-x-x-x"  # as SETUP creates them

SESSIONS = """
import json
from accounts.models import User
from sessions_app.services.sessions import session_create

out = {}
for email in ("root@example.com", "alice@example.com"):
    out[email] = session_create(actor=User.objects.get(email=email), title="crawl").pk
print(json.dumps(out))
"""

# Every asset the DOM names, resolved to absolute URLs by the browser.
DOM_ASSETS = """() => [
  ...[...document.querySelectorAll("script[src], img[src], iframe[src], source[src], "
      + "video[src], audio[src], embed[src]")].map((n) => n.src),
  ...[...document.querySelectorAll("link[href]")].map((n) => n.href),
  ...[...document.querySelectorAll("object[data]")].map((n) => n.data),
]"""


def _console_paths(samples: dict[str, str]) -> list[str]:
    """Each console route with sample values; a route with a parameter we lack fails here."""
    from console import urls

    paths: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for entry in patterns:
            route = str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + route)
                continue
            assert isinstance(entry, URLPattern)

            def sample(match: re.Match[str], route: str = route) -> str:
                name = match.group(1)
                assert name in samples, f"no sample value for <{name}> in console route {route}"
                return samples[name]

            paths.append("/console/" + re.sub(r"<(?:\w+:)?(\w+)>", sample, prefix + route))

    walk(urls.urlpatterns, "")
    return paths


# Console pages only admins have (the admin crawl below visits them).
ADMIN_ONLY = {"/console/admin/"}


def _admin_paths() -> list[str]:
    """The admin index, each registered model's changelist and the user and group add forms."""
    from django.contrib import admin

    models = sorted(f"{m._meta.app_label}/{m._meta.model_name}" for m in admin.site._registry)
    paths = ["/admin/", *(f"/admin/{model}/" for model in models)]
    return [*paths, "/admin/accounts/user/add/", "/admin/auth/group/add/"]


class Crawl:
    """One browser context with the network cut and every request recorded."""

    def __init__(self, browser: Any, base: str) -> None:  # noqa: F811
        self.base = base
        self.origin = urlsplit(base)[:2]
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.requests: list[str] = []
        self.aborted: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("websocket", lambda ws: self.requests.append(ws.url))
        self.page.on("pageerror", lambda exc: self.errors.append(f"{exc} on {self.page.url}"))
        self.page.on("console", lambda msg: console_error(msg, self.errors))

    def _route(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            self.aborted.append(route.request.url)
            route.abort("internetdisconnected")

    def same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return True
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        return (scheme, parts.netloc) == self.origin

    def visit(self, path: str) -> None:
        response = self.page.goto(self.base + path, wait_until="networkidle")
        assert response is not None and response.status < 500, (path, response and response.status)
        assets = self.page.evaluate(DOM_ASSETS)
        foreign = [url for url in assets if not self.same_origin(url)]
        assert foreign == [], f"{path} names assets on other hosts: {foreign}"

    def check(self) -> None:
        assert self.aborted == [], f"requests to other hosts: {self.aborted}"
        foreign = [url for url in self.requests if not self.same_origin(url)]
        assert foreign == [], f"requests to other hosts: {foreign}"
        assert self.errors == []

    def close(self) -> None:
        self.context.close()


def _setup(live_hub: Any) -> dict[str, str]:
    printed = seed_console(live_hub, then=SESSIONS)
    return {email: str(printed[email]) for email in ("root@example.com", "alice@example.com")}


def test_every_page_loads_only_from_the_hub_with_the_network_cut(live_hub, browser) -> None:  # noqa: F811
    sessions = _setup(live_hub)
    base = live_hub.http_url
    visited: list[str] = []

    # Anonymous: the sign-in pages.
    crawl = Crawl(browser, base)
    try:
        for path in ("/console/login/", "/admin/login/"):
            crawl.visit(path)
        crawl.check()
    finally:
        crawl.close()

    # A plain user: every console page.
    crawl = Crawl(browser, base)
    try:
        sign_in(crawl.page, base)
        samples = {"node_id": "live", "session_id": sessions["alice@example.com"]}
        for path in _console_paths(samples):
            if path in ADMIN_ONLY:
                continue  # a 404 for everybody else (console/tests/test_views.py)
            crawl.visit(path)
            visited.append(path)
        crawl.check()
    finally:
        crawl.close()

    # An admin: the Django admin, every console page, and the API docs.
    crawl = Crawl(browser, base)
    page = crawl.page
    try:
        page.goto(base + "/admin/login/")
        page.fill("#id_username", ADMIN_EMAIL)
        page.fill("#id_password", ADMIN_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(base + "/admin/")
        # Styled: the admin's stylesheet applied (its header bar has a background colour).
        background = page.evaluate(
            "getComputedStyle(document.querySelector('#header')).backgroundColor"
        )
        assert background not in ("", "rgba(0, 0, 0, 0)", "transparent")
        for path in _admin_paths():
            crawl.visit(path)
            visited.append(path)
        samples = {"node_id": "live", "session_id": sessions["root@example.com"]}
        for path in _console_paths(samples):
            crawl.visit(path)

        # The API docs render Swagger UI's operations list, all from the hub.
        crawl.visit("/api/v1/docs/")
        page.wait_for_selector(".swagger-ui .opblock")
        assert page.locator(".swagger-ui .opblock").count() > 10
        assert (
            page.locator(".swagger-ui .info .title")
            .first.text_content()
            .startswith("Cortex Hub API")
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "offline-docs.png"))
        crawl.check()
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "offline-failure.png"), full_page=True)
        raise
    finally:
        crawl.close()
    assert "/console/" in visited and "/admin/accounts/user/" in visited
