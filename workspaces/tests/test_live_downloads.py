"""A browser download lands in the chat's workspace: a real hub, a real agent driving Debian's
Chromium against a loopback site that serves an attachment, the scripted model (loopback)
navigating and clicking through the chat's `browser` tool.

With a `hub` workspace the node saves the file in the session's folder and the hub copies it
into the mirror (the REST listing and the file's bytes show it); with a `node` workspace the
lead's watch brings it in. The tool result names the workspace path, not a node path. One hub
and one agent serve the module.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from providers.tests.llm_server import ScriptedLLM, openai_text, openai_tool_call
from tools.tests.test_browser_live import BROWSER_NODE, CHROMIUM, site  # noqa: F401  # fixture
from workspaces.tests.test_live_sync import Api, _states, _until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPORT = b"quarterly numbers\n"  # what the site's /report.txt serves as an attachment


@pytest.fixture(scope="module")
def world(module_live_hub, tmp_path_factory) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The module's hub with alice, her model on loopback, and node `live` with a browser."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run scripts/system-packages.sh test")
    llm = ScriptedLLM().start()
    seeded = module_live_hub.seed(llm.url + "/v1", token=True, then=BROWSER_NODE)
    root = tmp_path_factory.mktemp("node")
    agent = module_live_hub.start_agent(node_id="live", invite=seeded["invite"], root=root)
    api = Api(module_live_hub, seeded["token"])
    try:
        _until(
            "live online", lambda: api("GET", "/api/v1/nodes/live/").json()["status"] != "offline"
        )
        yield {"hub": module_live_hub, "llm": llm, "api": api, "root": root}
    finally:
        module_live_hub.stop_process(agent)
        llm.close()


def _chat(world: dict[str, Any], workspace: dict[str, Any], site_url: str) -> tuple[int, Any]:
    """A chat with node `live` and this workspace whose model navigates and clicks the download
    link; returns (session id, the click's tool result)."""
    api = world["api"]
    sid = api("POST", "/api/v1/sessions/", json={"title": "downloads"}).json()["id"]
    attached = api("POST", f"/api/v1/sessions/{sid}/nodes/", json={"node_id": "live"})
    assert attached.status_code == 201, attached.text
    patched = api("PATCH", f"/api/v1/sessions/{sid}/workspace/", json=workspace)
    assert patched.status_code == 200, patched.text
    for call_id, arguments in (
        ("call_nav", {"action": "navigate", "url": site_url + "/"}),
        ("call_dl", {"action": "click", "selector": "#dl"}),
    ):
        step = json.dumps({"node_id": "live", **arguments})
        world["llm"].add(openai_tool_call([(call_id, "browser", step)]))
    world["llm"].add(openai_text(["Downloaded."]))
    posted = api("POST", f"/api/v1/sessions/{sid}/messages/", json={"content": "Get the report"})
    assert posted.status_code == 202, posted.text

    def done() -> Any:
        rows = api("GET", f"/api/v1/sessions/{sid}/messages/?page_size=50").json()["results"]
        said = [m for m in rows if m["role"] == "assistant" and m["status"] == "done"]
        return rows if any(m["content"] == "Downloaded." for m in said) else None

    rows = _until("the chat turn ends", done, timeout=120)
    tools = {m["tool_call_id"]: m for m in rows if m["role"] == "tool"}
    return sid, tools["call_dl"]["tool_result"]["data"]["tasks"][0]


def _debug(world: dict[str, Any]) -> str:
    log = (world["root"] / "agent.log").read_text(errors="replace")[-3000:]
    return world["hub"].log()[-5000:] + "\n---\n" + log


def _workspace_file(world: dict[str, Any], sid: int, path: str) -> bytes | None:
    answer = world["api"]("GET", f"/api/v1/sessions/{sid}/workspace/file/?path={path}")
    return answer.content if answer.status_code == 200 else None


def test_a_download_joins_a_hub_workspace(world, site) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    api = world["api"]
    try:
        sid, click = _chat(world, {"source": "hub"}, site)
        assert (click["status"], click["error_code"]) == ("succeeded", ""), click
        assert click["result"]["downloads"] == [
            {
                "bytes": len(REPORT),
                "workspace_path": "downloads/report.txt",
                "sha256": hashlib.sha256(REPORT).hexdigest(),
            }
        ]
        on_node = world["root"] / "workspace" / "sessions" / str(sid) / "downloads" / "report.txt"
        assert on_node.read_bytes() == REPORT
        # The hub copies it into the mirror: the REST listing and the bytes show it.
        _until(
            "report.txt in the mirror", lambda: _workspace_file(world, sid, "downloads/report.txt")
        )
        listing = api("GET", f"/api/v1/sessions/{sid}/workspace/files/?path=downloads").json()
        assert [(e["path"], e["size"]) for e in listing["results"]] == [
            ("downloads/report.txt", len(REPORT))
        ]
        assert _workspace_file(world, sid, "downloads/report.txt") == REPORT
        # The node already holds it: the sync settles without drift.
        _until("live in sync", lambda: _states(api, sid) == {"live": ("in_sync", 0)})
    except BaseException:
        print(_debug(world))  # noqa: T201  # the logs explain a failure
        raise


def test_a_download_on_the_lead_joins_a_node_workspace(world, site) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    lead = world["root"] / "workspace" / "proj"
    lead.mkdir(parents=True, exist_ok=True)
    try:
        sid, click = _chat(world, {"source": "node", "node_id": "live", "path": "proj"}, site)
        assert (click["status"], click["error_code"]) == ("succeeded", ""), click
        saved = click["result"]["downloads"]
        assert [(d["workspace_path"], d["bytes"]) for d in saved] == [
            ("downloads/report.txt", len(REPORT))
        ]
        assert (lead / "downloads" / "report.txt").read_bytes() == REPORT
        _until(
            "the lead's download in the mirror",
            lambda: _workspace_file(world, sid, "downloads/report.txt"),
        )
        assert _workspace_file(world, sid, "downloads/report.txt") == REPORT
    except BaseException:
        print(_debug(world))  # noqa: T201  # the logs explain a failure
        raise
