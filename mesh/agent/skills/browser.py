"""The browser skill: one persistent Chromium context per chat session, with tabs.

Present only with Playwright and a Chromium on the machine. Payloads follow the one contract in
`browser_actions.py` (validated again here). Every request a page makes (navigation, redirect,
subresource, download) passes the node's domain policy, names resolved here so that a public
name pointing at a private address is refused too. A session's context closes when the hub says
the chat session ended (`close`), after `idle_timeout` seconds without work, or with the agent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import hashlib
import importlib.util
import ipaddress
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..browser_actions import (
    ACTIONS,
    DOWNLOADS_DIR,
    HUB_KEYS,
    URL_ACTIONS,
    ActionError,
    BrowserPolicy,
    address_refusal,
    downloads_target,
    split_url,
    url_refusal,
    validate_action,
)
from ..workspace import WorkspaceError, resolve_in_root
from .browser_proxy import REFUSED_HEADER, PolicyProxy

logger = logging.getLogger("cortex_agent.browser")

MAX_TEXT = 200_000
MAX_SNAPSHOT = 200_000
MAX_EVAL = 100_000
MAX_SESSIONS = 8
MAX_TABS = 16


class BrowserError(Exception):
    """A browser task that failed (`rejected`: refused before anything was done)."""

    def __init__(self, code: str, message: str, *, rejected: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.rejected = rejected


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


@dataclass
class _Session:
    key: str
    context: Any
    tabs: dict[int, Any] = field(default_factory=dict)
    current: int = 0
    next_tab: int = 1
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    downloads: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    pending: list[Any] = field(default_factory=list)  # downloads being saved
    #: Where this chat's downloads go: (its workspace folder, byte cap), from the hub's latest
    #: task; None without a session workspace (the node's own downloads/ folder).
    target: tuple[str, int] | None = None


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(name or ""))[:120].lstrip(".")
    return name or "download"


def _reserve(folder: Path, name: str) -> Path:
    """A new empty file in `folder` named `name` (or `stem-N.ext`), created exclusively and
    never through a symlink: a download never overwrites a file that is already there."""
    stem, dot, ext = name.partition(".")
    for n in range(10_000):
        candidate = folder / (name if n == 0 else f"{stem}-{n}{dot}{ext}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise OSError(f"no free name for {name} in {DOWNLOADS_DIR}/")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def _downloads_note(downloads: list[dict[str, Any]]) -> str:
    """What the model should know about where this action's downloads went."""
    notes = []
    if any("workspace_path" in d for d in downloads):
        notes.append(
            "workspace_path is the file's path in this chat's workspace (the workspace tools "
            "and the console list it once the hub has copied it in, which takes a moment)"
        )
    if any("node_path" in d and "note" not in d for d in downloads):
        notes.append(
            "node_path is relative to the node's workspace root (this chat has no workspace)"
        )
    if any("note" in d for d in downloads):
        notes.append("a download with a note is outside the chat's workspace; the note says why")
    return "; ".join(notes) + "."


class BrowserSessions:
    """The node's browser: one Chromium process, one context per chat session."""

    def __init__(
        self,
        *,
        policy: Callable[[], BrowserPolicy | None],
        downloads_root: Callable[[], Path],
        idle_timeout: float = 600.0,
    ) -> None:
        self._policy = policy
        self._downloads_root = downloads_root
        self.idle_timeout = idle_timeout
        self._pw: Any = None
        self._browser: Any = None
        self._sessions: dict[str, _Session] = {}
        self._start_lock = asyncio.Lock()
        self._sessions_lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self._proxy: PolicyProxy | None = None

    # -------------------------------------------------------------- lifecycle
    async def _ensure_browser(self) -> Any:
        async with self._start_lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            from playwright.async_api import async_playwright  # only where the capability exists

            if self._pw is None:
                self._pw = await async_playwright().start()
            if self._proxy is None:
                self._proxy = PolicyProxy(self._proxy_check)
                await self._proxy.start()
            executable = _chromium_executable()
            self._browser = await self._pw.chromium.launch(
                headless=True,
                executable_path=executable
                if executable and "ms-playwright" not in executable
                else None,
                # Every request, loopback included, goes through the policy proxy.
                proxy={"server": f"http://127.0.0.1:{self._proxy.port}", "bypass": "<-loopback>"},
                args=["--proxy-bypass-list=<-loopback>"],
            )
            if self._reaper is None or self._reaper.done():
                self._reaper = asyncio.ensure_future(self._reap())
            return self._browser

    async def _session(self, key: str) -> _Session:
        async with self._sessions_lock:  # two tasks of a new session make one context
            session = self._sessions.get(key)
            if session is not None:
                return session
            if len(self._sessions) >= MAX_SESSIONS:  # the least recently used idle one goes
                idle = [s for s in self._sessions.values() if not s.lock.locked()]
                if not idle:
                    raise BrowserError(
                        "too_many_sessions",
                        f"This node's browser is busy with {MAX_SESSIONS} chat sessions.",
                        rejected=True,
                    )
                await self.close_session(min(idle, key=lambda s: s.last_used).key)
            browser = await self._ensure_browser()
            context = await browser.new_context(accept_downloads=True)
            session = _Session(key=key, context=context)
            await context.route("**/*", lambda route: self._route(session, route))
            context.on("page", lambda page: self._watch_page(session, page))
            self._sessions[key] = session
            return session

    async def close_session(self, key: str) -> bool:
        session = self._sessions.pop(key, None)
        if session is None:
            return False
        with contextlib.suppress(Exception):
            await session.context.close()
        return True

    async def close_all(self) -> None:
        for key in list(self._sessions):
            await self.close_session(key)
        if self._reaper is not None:
            self._reaper.cancel()
        with contextlib.suppress(Exception):
            if self._browser is not None:
                await self._browser.close()
        with contextlib.suppress(Exception):
            if self._pw is not None:
                await self._pw.stop()
        if self._proxy is not None:
            await self._proxy.close()
        self._browser = self._pw = self._proxy = None

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, max(self.idle_timeout / 4, 0.5)))
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if not session.lock.locked() and now - session.last_used > self.idle_timeout:
                    logger.info("closing the idle browser of session %s", session.key or "-")
                    await self.close_session(session.key)

    # -------------------------------------------------------------- policy
    async def _route(self, session: _Session, route: Any) -> None:
        url = route.request.url
        refusal = await self.refusal(url)
        if refusal is None:  # the proxy checks again: redirect hops, the address it dials
            await route.continue_()
            return
        session.blocked.append(f"{url[:200]}: {refusal}")
        await route.abort("blockedbyclient")

    async def refusal(self, url: str) -> str | None:
        """Why the page may not load `url` now (lists, then every address its name has)."""
        return (await self.checked(url))[0]

    async def checked(self, url: str) -> tuple[str | None, str]:
        """(why `url` is refused or None, the checked address to connect to)."""
        policy = self._policy()
        if policy is None:
            return "the node's browser policy could not be read", ""
        refused = url_refusal(policy, url)
        if refused is not None:
            return refused, ""
        host, address = split_url(url)
        if address is not None:
            return None, str(address)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except (OSError, UnicodeError):
            return f"{host} does not resolve", ""
        found = ""
        for info in infos:
            try:
                resolved = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            except ValueError:
                return f"{host} resolves to an address this node cannot check", ""
            why = address_refusal(policy, resolved)
            if why is not None:
                return f"{host} resolves to {why}", ""
            found = found or str(resolved)
        return (None, found) if found else (f"{host} does not resolve", "")

    async def _proxy_check(self, scheme: str, host: str, port: int) -> tuple[str | None, str]:
        return await self.checked(f"{scheme}://{host}:{port}/")

    def _watch_page(self, session: _Session, page: Any) -> None:
        if any(known is page for known in session.tabs.values()):
            return  # a page is seen twice: by the context's event and by who opened it
        session.tabs[session.next_tab] = page
        session.next_tab += 1
        page.on(
            "download",
            lambda download: session.pending.append(
                asyncio.ensure_future(self._download(session, download))
            ),
        )

    def _download_folder(self, folder: str | None, *, create: bool = True) -> Path:
        """The real folder downloads are saved in: `downloads/` of the session's workspace
        folder (`folder`, checked by `downloads_target`), or of the node's workspace root when
        `folder` is None. Raises WorkspaceError when it resolves outside the root (a symlink);
        checked before anything is created, and again after."""
        root = self._downloads_root()
        rel = DOWNLOADS_DIR if folder in (None, ".") else f"{folder}/{DOWNLOADS_DIR}"
        found = resolve_in_root(root, rel)
        if create:
            found.mkdir(parents=True, exist_ok=True, mode=0o700)
            found = resolve_in_root(root, rel)
        return found

    async def _download(self, session: _Session, download: Any) -> None:
        """Save a finished download: in the chat's workspace folder when the hub named one and
        the file is within its cap, else in the node's own downloads/ (with a note saying why)."""
        url = str(download.url)[:200]
        policy = self._policy()
        if policy is None or not policy.allow_downloads:
            session.blocked.append(f"download {url}: downloads are not allowed")
            with contextlib.suppress(Exception):
                await download.cancel()
            return
        target = session.target
        try:
            size = os.path.getsize(await download.path())  # waits until it has finished
        except Exception as exc:  # a failed download is reported, not fatal
            session.blocked.append(f"download {url}: {_first_line(exc)}")
            return
        entry: dict[str, Any] = {"bytes": size}
        folder = None
        if target is not None and size <= target[1]:
            folder = target[0]
        elif target is not None:
            entry["note"] = (
                f"{size} bytes is more than the {target[1]} bytes a download kept in the chat's "
                f"workspace may have: saved in the node's own {DOWNLOADS_DIR}/ folder instead, "
                "outside the workspace"
            )
        try:
            saved = _reserve(self._download_folder(folder), _safe_name(download.suggested_filename))
        except WorkspaceError:
            session.blocked.append(f"download {url}: the session's folder leaves the workspace")
            return
        except OSError as exc:
            session.blocked.append(f"download {url}: {_first_line(exc)}")
            return
        try:
            await download.save_as(str(saved))
            digest = await asyncio.get_running_loop().run_in_executor(None, _sha256, saved)
        except Exception as exc:  # a failed download is reported, not fatal
            with contextlib.suppress(OSError):
                saved.unlink()
            session.blocked.append(f"download {url}: {_first_line(exc)}")
            return
        where = "workspace_path" if folder is not None else "node_path"
        entry.update({where: f"{DOWNLOADS_DIR}/{saved.name}", "sha256": digest})
        session.downloads.append(entry)

    # -------------------------------------------------------------- actions
    async def run(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Validate `payload` against the contract and perform it in its session's context."""
        try:
            payload = validate_action(payload, extra=HUB_KEYS)
            target = downloads_target(payload.get("downloads"))
        except ActionError as exc:
            raise BrowserError(exc.code, exc.message, rejected=True) from exc
        if target is not None:
            try:  # a session folder that a symlink leads out of the root: refused, not created
                self._download_folder(target[0], create=False)
            except WorkspaceError as exc:
                raise BrowserError(
                    "path_outside_workspace",
                    "The session's workspace folder is outside the node's workspace.",
                    rejected=True,
                ) from exc
        key = str(payload.get("session") or "")
        action = payload["action"]
        if action == "close":
            return {"closed": await self.close_session(key)}
        policy = self._policy()
        if policy is None:
            raise BrowserError(
                "policy_unreadable", "The node's browser policy could not be read.", rejected=True
            )
        if action in URL_ACTIONS and "url" in payload:
            why = await self.refusal(payload["url"])
            if why is not None:
                raise BrowserError("url_not_allowed", f"Refused: {why}.", rejected=True)
        if ACTIONS[action].needs_approval:
            if not policy.allow_evaluate:
                raise BrowserError(
                    "evaluate_not_allowed",
                    "This node's policy does not allow running JavaScript in pages.",
                    rejected=True,
                )
            if payload.get("confirmed") is not True:
                raise BrowserError(
                    "confirmation_required",
                    "Running JavaScript needs a person's approval; the task carries none.",
                    rejected=True,
                )
        session = await self._session(key)
        async with session.lock:
            session.last_used = time.monotonic()
            session.blocked = []
            session.target = target
            session.context.set_default_timeout(max(1000.0, timeout * 1000 * 0.9))
            try:
                result = await self._act(session, action, payload)
            except BrowserError:
                raise
            except Exception as exc:
                code = (
                    "browser_timeout" if type(exc).__name__ == "TimeoutError" else "browser_error"
                )
                raise BrowserError(code, _first_line(exc)) from exc
            finally:
                session.last_used = time.monotonic()
            await asyncio.sleep(0.05)  # a download this action started registers
            pending, session.pending = session.pending, []
            if pending:  # those still running are reported by a later action
                await asyncio.wait(pending, timeout=min(timeout / 2, 30.0))
                session.pending = [job for job in pending if not job.done()]
            described = await self._describe(session, result)
            session.downloads = []
            return described

    async def _page(self, session: _Session, tab: int | None) -> Any:
        if tab is not None:
            page = session.tabs.get(tab)
            if page is None or page.is_closed():
                raise BrowserError("no_such_tab", f"There is no tab {tab}.", rejected=True)
            return page
        page = session.tabs.get(session.current)
        if page is None or page.is_closed():
            page = await session.context.new_page()
            self._watch_page(session, page)
            session.current = next(t for t, p in session.tabs.items() if p is page)
        return page

    @staticmethod
    def _target(page: Any, payload: dict[str, Any]) -> Any:
        if "ref" in payload:
            return page.locator(f"aria-ref={payload['ref']}")
        return page.locator(payload["selector"])

    async def _act(self, session: _Session, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "tabs":
            return {}
        if action == "tab_new":
            if len(session.tabs) >= MAX_TABS:
                raise BrowserError("too_many_tabs", f"At most {MAX_TABS} tabs.", rejected=True)
            page = await session.context.new_page()
            self._watch_page(session, page)
            session.current = next(t for t, p in session.tabs.items() if p is page)
            if "url" in payload:
                await page.goto(payload["url"], wait_until="domcontentloaded")
            return {}
        if action == "tab_select":
            await self._page(session, payload["tab"])
            session.current = payload["tab"]
            return {}
        if action == "tab_close":
            tab = payload.get("tab", session.current)
            page = await self._page(session, tab)
            await page.close()
            session.tabs.pop(tab, None)
            if session.current == tab:
                session.current = max(session.tabs) if session.tabs else 0
            return {"closed_tab": tab}
        page = await self._page(session, payload.get("tab"))
        if action == "navigate":
            response = await page.goto(payload["url"], wait_until="load")
            refused = response.headers.get(REFUSED_HEADER.lower()) if response else None
            if refused:  # a redirect hop the proxy refused: the tab does not stay on it
                with contextlib.suppress(Exception):
                    await page.goto("about:blank")
                raise BrowserError("url_not_allowed", f"Refused: {refused}.")
            return {"status": response.status if response else None}
        if action == "back":
            await page.go_back()
            return {}
        if action == "reload":
            await page.reload()
            return {}
        if action == "click":
            await self._target(page, payload).click()
            return {}
        if action == "hover":
            await self._target(page, payload).hover()
            return {}
        if action == "type":
            target = self._target(page, payload)
            await target.fill(payload["text"])
            if payload.get("submit"):
                await target.press("Enter")
            return {}
        if action == "press":
            if "ref" in payload or "selector" in payload:
                await self._target(page, payload).press(payload["key"])
            else:
                await page.keyboard.press(payload["key"])
            return {}
        if action == "select":
            target = self._target(page, payload)
            try:
                chosen = await target.select_option(value=payload["value"], timeout=2000)
            except Exception:
                chosen = await target.select_option(label=payload["value"])
            return {"selected": chosen}
        if action == "scroll":
            if "ref" in payload or "selector" in payload:
                await self._target(page, payload).scroll_into_view_if_needed()
            else:
                amount = payload.get("amount", 600)
                dx, dy = {
                    "down": (0, amount),
                    "up": (0, -amount),
                    "right": (amount, 0),
                    "left": (-amount, 0),
                }[payload.get("direction", "down")]
                await page.mouse.wheel(dx, dy)
            position = await page.evaluate("() => [window.scrollX, window.scrollY]")
            return {"scroll": position}
        if action == "wait":
            if "text" in payload:
                await page.get_by_text(payload["text"]).first.wait_for(state="visible")
            else:
                await self._target(page, payload).wait_for(state=payload.get("state", "visible"))
            return {"found": True}
        if action == "text":
            if "ref" in payload or "selector" in payload:
                text = await self._target(page, payload).inner_text()
            else:
                text = await page.inner_text("body")
            return {"text": text[:MAX_TEXT], "truncated": len(text) > MAX_TEXT}
        if action == "snapshot":
            try:
                snapshot = await page.aria_snapshot(mode="ai")
            except TypeError:  # an older Playwright: no refs
                snapshot = await page.locator("body").aria_snapshot()
            return {"snapshot": snapshot[:MAX_SNAPSHOT], "truncated": len(snapshot) > MAX_SNAPSHOT}
        if action == "screenshot":
            png = await page.screenshot(full_page=bool(payload.get("full_page")))
            return {"png_base64": base64.b64encode(png).decode(), "bytes": len(png)}
        if action == "evaluate":
            value = await page.evaluate(payload["script"])
            text = json.dumps(value, default=str)
            if len(text) > MAX_EVAL:
                return {"value_json": text[:MAX_EVAL], "truncated": True}
            return {"value": value}
        raise BrowserError("invalid_action", f"Unknown action {action!r}.", rejected=True)

    async def _describe(self, session: _Session, result: dict[str, Any]) -> dict[str, Any]:
        """The action's result plus where the session stands: tabs, current page, downloads."""
        tabs = []
        for tab, page in sorted(session.tabs.items()):
            if page.is_closed():
                session.tabs.pop(tab, None)
                continue
            title = ""
            with contextlib.suppress(Exception):
                title = await page.title()
            tabs.append({"tab": tab, "url": page.url, "title": title[:300]})
        current = next((t for t in tabs if t["tab"] == session.current), None)
        described = dict(result)
        described["tab"] = session.current
        described["url"] = current["url"] if current else ""
        described["title"] = current["title"] if current else ""
        described["tabs"] = tabs
        if session.downloads:
            described["downloads"] = list(session.downloads)
            described["downloads_note"] = _downloads_note(session.downloads)
        if session.blocked:
            described["blocked"] = session.blocked[:20]
        return described
