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

from cortex.testing import Page, loopback_site
from providers.tests.llm_server import ScriptedLLM, openai_text, openai_tool_call
from tools.tests.test_browser_live import BROWSER_NODE, CHROMIUM
from workspaces.tests.conftest import LiveNodes, states, until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPORT = b"quarterly numbers\n"
BIG = b"0123456789" * 300  # over this module's per-file cap
PAGE = b'<html><body><a id="dl" href="/report.txt">report</a> <a id="big" href="/big.bin">big</a>'


@pytest.fixture(scope="module")
def module_live_hub_env() -> dict[str, str]:
    """A per-file cap small enough for the site's big file to be over it."""
    return {"CORTEX_WORKSPACE_MAX_FILE_BYTES": "1000"}


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """A loopback site: a page with two links, each to an attachment."""
    binary = "application/octet-stream"
    with loopback_site(
        {
            "/": Page(PAGE, "text/html"),
            "/report.txt": Page(REPORT, binary, "report.txt"),
            "/big.bin": Page(BIG, binary, "big.bin"),
        }
    ) as url:
        yield url


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    """Alice's model, on loopback."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run scripts/system-packages.sh test")
    server = ScriptedLLM().start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def live_nodes_seed(llm: ScriptedLLM) -> dict[str, Any]:
    """Alice's model on loopback; node `live` with a browser, `live2` without one."""
    return {"llm_url": llm.url + "/v1", "then": BROWSER_NODE}


@pytest.fixture
def world(live_nodes: LiveNodes, llm: ScriptedLLM) -> dict[str, Any]:
    """The module's hub and agents (`live_nodes`), with the model and the nodes' roots."""
    return {
        "nodes": live_nodes,
        "llm": llm,
        "api": live_nodes.api,
        "root": live_nodes.roots["live"],
        "root2": live_nodes.roots["live2"],
    }


def _chat(
    world: dict[str, Any],
    workspace: dict[str, Any],
    site_url: str,
    link: str = "#dl",
    nodes: tuple[str, ...] = ("live",),
) -> tuple[int, Any]:
    """A chat with these nodes and this workspace whose model navigates on `live` and clicks
    the download `link`; returns (session id, the click's tool result)."""
    api = world["api"]
    sid = world["nodes"].session(workspace, nodes=nodes)
    for call_id, arguments in (
        ("call_nav", {"action": "navigate", "url": site_url + "/"}),
        ("call_dl", {"action": "click", "selector": link}),
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

    rows = until("the chat turn ends", done, timeout=120)
    tools = {m["tool_call_id"]: m for m in rows if m["role"] == "tool"}
    return sid, tools["call_dl"]["tool_result"]["data"]["tasks"][0]


def _workspace_file(world: dict[str, Any], sid: int, path: str) -> bytes | None:
    answer = world["api"]("GET", f"/api/v1/sessions/{sid}/workspace/file/?path={path}")
    return answer.content if answer.status_code == 200 else None


def test_a_download_joins_a_hub_workspace(world, site) -> None:  # type: ignore[no-untyped-def]
    api = world["api"]
    sid, click = _chat(world, {"source": "hub"}, site, nodes=("live", "live2"))
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
    until("report.txt in the mirror", lambda: _workspace_file(world, sid, "downloads/report.txt"))
    listing = api("GET", f"/api/v1/sessions/{sid}/workspace/files/?path=downloads").json()
    assert [(e["path"], e["size"]) for e in listing["results"]] == [
        ("downloads/report.txt", len(REPORT))
    ]
    assert _workspace_file(world, sid, "downloads/report.txt") == REPORT
    # The other node receives it through the sync; the first holds it already.
    other = world["root2"] / "workspace" / "sessions" / str(sid) / "downloads" / "report.txt"
    until("report.txt on live2", lambda: other.exists() and other.read_bytes() == REPORT)
    until(
        "both in sync",
        lambda: states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
    )


def test_a_download_on_the_lead_joins_a_node_workspace(world, site) -> None:  # type: ignore[no-untyped-def]
    lead = world["root"] / "workspace" / "proj"
    lead.mkdir(parents=True, exist_ok=True)
    sid, click = _chat(world, {"source": "node", "node_id": "live", "path": "proj"}, site)
    assert (click["status"], click["error_code"]) == ("succeeded", ""), click
    saved = click["result"]["downloads"]
    assert [(d["workspace_path"], d["bytes"]) for d in saved] == [
        ("downloads/report.txt", len(REPORT))
    ]
    assert (lead / "downloads" / "report.txt").read_bytes() == REPORT
    until(
        "the lead's download in the mirror",
        lambda: _workspace_file(world, sid, "downloads/report.txt"),
    )
    assert _workspace_file(world, sid, "downloads/report.txt") == REPORT


def test_a_download_over_the_cap_stays_out_of_the_workspace_with_a_note(world, site) -> None:  # type: ignore[no-untyped-def]
    api = world["api"]
    sid, click = _chat(world, {"source": "hub"}, site, link="#big")
    assert (click["status"], click["error_code"]) == ("succeeded", ""), click
    saved = click["result"]["downloads"]
    assert [(d["node_path"], d["bytes"]) for d in saved] == [("downloads/big.bin", len(BIG))]
    assert saved[0]["note"].startswith("3000 bytes is more than the 1000 bytes a download")
    assert (world["root"] / "workspace" / "downloads" / "big.bin").read_bytes() == BIG
    # The sync is not stuck on it, and the workspace never lists it.
    until("live in sync", lambda: states(api, sid) == {"live": ("in_sync", 0)})
    listing = api("GET", f"/api/v1/sessions/{sid}/workspace/files/")
    assert "downloads" not in [e["path"] for e in listing.json()["results"]]
    assert _workspace_file(world, sid, "downloads/big.bin") is None
