"""The browser contract end to end: the chat tool through a real hub to a real agent with a real
Chromium, against a small site served on loopback, every action of the contract in one chat.

The scripted model (a loopback OpenAI-style server) calls the `browser` tool once per step; the
page persists between calls (one context per chat session on the node). Typing asks for
approval (a write), `evaluate` asks whatever the policy, the loopback site is reachable only
because the node's policy allows 127.0.0.1 explicitly, and deleting the chat closes the browser.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from cortex.testing import Page, loopback_site, wait_until
from mesh.agent.browser_actions import ACTIONS
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.tests.conftest import llm_server  # noqa: F401  # fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"

BROWSER_NODE = """
from mesh.models import Node

policy = dict(node.sandbox_policy)
policy["browser"] = {"allowed_domains": ["127.0.0.1"], "allow_evaluate": True}
services.node_update(actor=admin, node=Node.objects.get(pk=node.pk),
                     data={"skill_config": {"browser": True}, "sandbox_policy": policy})
"""

PAGE = b"""<!doctype html>
<html><head><title>Cortex form</title></head>
<body>
<h1>Order form</h1>
<label for="name">Name</label> <input id="name" name="name">
<label for="color">Colour</label>
<select id="color"><option value="red">Red</option><option value="green">Green</option></select>
<button id="go" onclick="document.getElementById('result').textContent =
  'Hello, ' + document.getElementById('name').value + ' (' +
  document.getElementById('color').value + ')'">Go</button>
<p id="result"></p>
<p id="hover" onmouseover="this.textContent = 'hovered'">hover me</p>
<input id="keys" onkeydown="document.getElementById('pressed').textContent = event.key">
<p id="pressed"></p>
<a id="dl" href="/report.txt">Download the report</a>
<div style="height: 3000px"></div>
<p id="bottom">the end</p>
</body></html>"""


@pytest.fixture
def site() -> Iterator[str]:
    report = Page(b"quarterly numbers\n", "text/plain", "report.txt")
    with loopback_site({"/": Page(PAGE), "/other": Page(PAGE), "/report.txt": report}) as url:
        yield url


def _http(hub: Any, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310  # loopback test hub
        hub.http_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            raw = response.read()
            kind = response.headers.get("Content-Type", "")
            if kind.startswith("application/json"):
                return response.status, json.loads(raw) if raw else None
            return response.status, raw
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _refs(url: str) -> dict[str, str]:
    """The refs Playwright gives this page's elements in a first AI snapshot (the agent's
    snapshot of the same page in the same Chromium numbers them the same way)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(url)
            snapshot = page.aria_snapshot(mode="ai")
        finally:
            browser.close()
    refs: dict[str, str] = {}
    for line in snapshot.splitlines():
        for role, name in (("button", '"Go"'), ("combobox", '"Colour"'), ("link", '"Download')):
            if line.strip().startswith(f"- {role} {name}") and "[ref=" in line:
                refs[role] = line.split("[ref=")[1].split("]")[0]
    return refs


def _approver(hub: Any, token: str, sid: int, stop: threading.Event, seen: list[Any]) -> None:
    while not stop.is_set():
        status, body = _http(hub, "GET", f"/api/v1/sessions/{sid}/approvals/", token)
        rows = body.get("results", body) if isinstance(body, dict) else body or []
        for row in rows:
            if row["status"] == "pending":
                seen.append((row["arguments"].get("action"), row["reason"]))
                _http(hub, "POST", f"/api/v1/sessions/{sid}/approvals/{row['id']}/approve/", token)
        time.sleep(0.2)


def test_every_action_through_the_chat_tool_on_a_real_agent(live_hub, llm_server, site, tmp_path):  # noqa: F811
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run scripts/system-packages.sh test")
    refs = _refs(site + "/")
    assert set(refs) == {"button", "combobox", "link"}, refs
    seeded = live_hub.seed(llm_server.url + "/v1", token=True, then=BROWSER_NODE)
    invite, token = seeded["invite"], seeded["token"]
    workspace = tmp_path / "workspace"
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)

    def node() -> Any:
        return _http(live_hub, "GET", "/api/v1/nodes/live/", token)[1]

    steps: list[dict[str, Any]] = [
        {"action": "navigate", "url": site + "/"},
        {"action": "snapshot"},
        {"action": "type", "selector": "#name", "text": "Ada"},
        {"action": "select", "ref": refs["combobox"], "value": "green"},
        {"action": "click", "ref": refs["button"]},
        {"action": "wait", "text": "Hello, Ada"},
        {"action": "text", "selector": "#result"},
        {"action": "hover", "selector": "#hover"},
        {"action": "wait", "selector": "#hover:has-text('hovered')", "state": "visible"},
        {"action": "press", "selector": "#keys", "key": "Tab"},
        {"action": "text", "selector": "#pressed"},
        {"action": "scroll", "direction": "down", "amount": 1500},
        {"action": "scroll", "selector": "#bottom"},
        {"action": "evaluate", "script": "() => document.title + '|' + location.pathname"},
        {"action": "screenshot"},
        {"action": "click", "ref": refs["link"]},
        {"action": "tab_new", "url": site + "/other"},
        {"action": "tabs"},
        {"action": "tab_select", "tab": 1},
        {"action": "tab_close", "tab": 2},
        {"action": "navigate", "url": "http://localhost:1/"},
        {"action": "navigate", "url": site + "/other"},
        {"action": "back"},
        {"action": "reload"},
        {"action": "text"},
    ]
    # The contract test covers every action of the contract (close: when the chat is deleted).
    assert {s["action"] for s in steps} | {"close"} == set(ACTIONS)
    approvals: list[Any] = []
    stop = threading.Event()
    try:
        wait_until(lambda: node()["status"] != "offline", timeout=90)
        status, session = _http(live_hub, "POST", "/api/v1/sessions/", token, {"title": "web"})
        assert status == 201
        sid = session["id"]
        patch = {"approval_policy": "ask"}
        assert _http(live_hub, "PATCH", f"/api/v1/sessions/{sid}/", token, patch)[0] == 200
        attach = {"node_id": "live"}
        assert _http(live_hub, "POST", f"/api/v1/sessions/{sid}/nodes/", token, attach)[0] == 201
        approver = threading.Thread(
            target=_approver, args=(live_hub, token, sid, stop, approvals), daemon=True
        )
        approver.start()
        # A turn has at most CORTEX_SESSIONS_MAX_STEPS model calls: several turns, one browser.
        for first in range(0, len(steps), 8):
            for index in range(first, min(first + 8, len(steps))):
                arguments = json.dumps({"node_id": "live", **steps[index]})
                llm_server.add(openai_tool_call([(f"call_{index}", "browser", arguments)]))
            llm_server.add(openai_text([f"Done {first}."]))
            posted = {"content": f"Steps from {first}"}
            status, _ = _http(live_hub, "POST", f"/api/v1/sessions/{sid}/messages/", token, posted)
            assert status == 202

            def finished(first: int = first) -> Any:
                path = f"/api/v1/sessions/{sid}/messages/?page_size=200"
                rows = _http(live_hub, "GET", path, token)[1]["results"]
                said = [m for m in rows if m["role"] == "assistant" and m["status"] == "done"]
                return rows if any(m["content"] == f"Done {first}." for m in said) else None

            rows = wait_until(finished, timeout=180)
    except BaseException:
        print(live_hub.log()[-6000:])  # noqa: T201  # the hub's log explains a failure
        print((tmp_path / "agent.log").read_text()[-6000:])  # noqa: T201
        raise
    finally:
        stop.set()

    tools = {m["tool_call_id"]: m for m in rows if m["role"] == "tool"}
    assert len(tools) == len(steps)

    def result(index: int) -> dict[str, Any]:
        return tools[f"call_{index}"]["tool_result"]["data"]["tasks"][0]

    for index, step in enumerate(steps):
        if step.get("url") == "http://localhost:1/":
            continue
        task = result(index)
        assert (task["status"], task["error_code"]) == ("succeeded", ""), (step, task)
    # One persistent page: the form's state survives from call to call.
    assert result(0)["result"]["title"] == "Cortex form"
    assert "[ref=" in result(1)["result"]["snapshot"]
    assert result(6)["result"]["text"] == "Hello, Ada (green)"
    assert result(10)["result"]["text"] == "Tab"
    assert result(12)["result"]["scroll"][1] > 1000
    assert result(13)["result"]["value"] == "Cortex form|/"
    shot = result(14)["result"]["screenshot"]
    assert shot["stored"] is True and shot["bytes"] > 1000
    status, png = _http(live_hub, "GET", shot["url"], token)
    assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) == shot["bytes"]
    # No workspace in this chat: the node's own downloads/ folder, named relative to its root.
    assert [d["node_path"] for d in result(15)["result"]["downloads"]] == ["downloads/report.txt"]
    assert (workspace / "downloads" / "report.txt").read_text() == "quarterly numbers\n"
    assert [t["tab"] for t in result(17)["result"]["tabs"]] == [1, 2]
    assert (result(19)["result"]["tab"], len(result(19)["result"]["tabs"])) == (1, 1)
    refused = tools["call_20"]  # the hub refused it: no task, nothing reached the node
    assert (refused["error_code"], refused["task_ids"]) == ("url_not_allowed", []), refused
    assert result(24)["result"]["url"] == site + "/"
    assert result(22)["result"]["url"] == site + "/"  # back: the tab kept its history
    assert result(24)["result"]["text"].startswith("Order form\nName")
    assert all(result(i)["result"]["tab"] == 1 for i in range(0, 16))
    # Typing asked (a write); JavaScript asked; reading and clicking did not.
    reasons = {action: reason for action, reason in approvals}
    assert reasons["type"] == "risk:write"
    assert reasons["evaluate"] == "browser_evaluate"
    assert "navigate" not in reasons and "click" not in reasons

    # Deleting the chat closes its browser context on the node.
    status, _ = _http(live_hub, "DELETE", f"/api/v1/sessions/{sid}/", token)
    assert status == 204

    def closed() -> Any:
        listing = _http(live_hub, "GET", "/api/v1/nodes/live/tasks/?page_size=100", token)[1]
        for task in listing["results"]:
            detail = _http(live_hub, "GET", f"/api/v1/tasks/{task['id']}/", token)[1]
            if detail["payload"].get("action") == "close" and detail["status"] == "succeeded":
                return detail
        return None

    try:
        detail = wait_until(closed, timeout=60)
    finally:
        live_hub.stop_process(agent)
    assert detail["result"] == {"closed": True}
    assert detail["payload"]["session"] == str(sid)
