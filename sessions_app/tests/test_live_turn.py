"""End to end: a real hub process, a real agent process, a scripted model on loopback.

A user asks to list a directory on an attached node; the model calls `mesh_terminal`; the user
approves; the agent runs `ls`; the model reads the output and answers; a WebSocket client
watched it all live. Then: the hub dies mid-turn and the restarted hub ends that turn
`interrupted`, with the user's words intact.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from cortex.testing import wait_until
from providers.tests.llm_server import Step, openai_text, openai_tool_call

pytestmark = pytest.mark.slow


def _http(hub: Any, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310  # loopback test hub
        hub.http_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _setup(hub: Any, llm_url: str) -> tuple[str, str]:
    seeded = hub.seed(llm_url + "/v1", token=True)
    return seeded["invite"], seeded["token"]


def _chat_on_live(hub: Any, llm_url: str, root: Any, title: str) -> tuple[Any, str, int]:
    """The usual world (alice's model at `llm_url`), node `live`'s agent started in `root`
    and online, and a new session of alice's with `live` attached: (agent, token, session id).
    The caller stops the agent (`hub.stop_process`)."""
    invite, token = _setup(hub, llm_url)
    agent = hub.start_agent(node_id="live", invite=invite, root=root)
    try:
        wait_until(
            lambda: _http(hub, "GET", "/api/v1/nodes/live/", token)[1]["status"] != "offline",
            timeout=60,
        )
        status, session = _http(hub, "POST", "/api/v1/sessions/", token, {"title": title})
        assert status == 201
        sid = session["id"]
        status, _ = _http(hub, "POST", f"/api/v1/sessions/{sid}/nodes/", token, {"node_id": "live"})
        assert status == 201
    except BaseException:
        hub.stop_process(agent)
        raise
    return agent, token, sid


def _post_and_approve(
    hub: Any, token: str, sid: int, content: str, ids: dict[str, int] | None = None
) -> Callable[[str, int | None], None]:
    """The `_watch` callback: posts `content` (its answer's ids into `ids`), then approves
    every approval asked for."""

    def act(what: str, approval_id: int | None) -> None:
        if what == "post":
            path = f"/api/v1/sessions/{sid}/messages/"
            code, body = _http(hub, "POST", path, token, {"content": content})
            assert code == 202, body
            if ids is not None:
                ids.update(body)
        else:
            path = f"/api/v1/sessions/{sid}/approvals/{approval_id}/approve/"
            code, body = _http(hub, "POST", path, token)
            assert code == 200, body

    return act


def _watch(hub: Any, token: str, sid: int, approve: Any) -> list[dict[str, Any]]:
    """The session's frames over its WebSocket until the final `message.done`, `approve`
    posting the message and every approval; on a failure the hub's log is printed."""
    try:
        return asyncio.run(_frames(hub, token, sid, approve))
    except BaseException:
        print(hub.log()[-4000:])  # noqa: T201  # the hub's log explains a failure
        raise


async def _frames(hub: Any, token: str, sid: int, approve: Any) -> list[dict[str, Any]]:
    status, ticket = await asyncio.to_thread(_http, hub, "POST", "/api/v1/ws-ticket/", token, {})
    assert status in (200, 201), ticket
    url = (
        hub.http_url.replace("http://", "ws://") + f"/ws/sessions/{sid}/?ticket={ticket['ticket']}"
    )
    frames: list[dict[str, Any]] = []
    async with websockets.connect(url, origin=hub.http_url) as ws:
        posted = asyncio.create_task(asyncio.to_thread(approve, "post", None))
        async with asyncio.timeout(90):
            async for raw in ws:
                frame = json.loads(raw)
                frames.append(frame)
                if frame["type"] == "tool.approval_required":
                    await asyncio.to_thread(approve, "approve", frame["approval_id"])
                if frame["type"] == "message.done" and frame.get("final"):
                    break
        await posted
    return frames


def test_model_runs_ls_on_a_real_agent_and_explains(live_hub, llm_server, tmp_path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "hello.txt").write_text("hi\n")
    (workspace / "notes.md").write_text("# notes\n")
    agent, token, sid = _chat_on_live(live_hub, llm_server.url, tmp_path, "ls")
    try:
        llm_server.add(
            openai_tool_call(
                [("call_ls", "mesh_terminal", '{"command": "ls", "node_id": "live"}')],
                text="Let me look.",
            )
        )
        llm_server.add(openai_text(["The directory holds ", "hello.txt and notes.md."]))
        ids: dict[str, int] = {}
        act = _post_and_approve(live_hub, token, sid, "What files are on live?", ids)
        frames = _watch(live_hub, token, sid, act)
    finally:
        live_hub.stop_process(agent)

    assert [f["seq"] for f in frames] == list(
        range(frames[0]["seq"], frames[0]["seq"] + len(frames))
    )
    types = [f["type"] for f in frames]
    assert (
        types.index("tool.call")
        < types.index("tool.approval_required")
        < types.index("tool.result")
    )
    deltas = "".join(f["delta"] for f in frames if f["type"] == "message.delta")
    assert deltas == "Let me look.The directory holds hello.txt and notes.md."
    asked = next(f for f in frames if f["type"] == "tool.approval_required")
    assert (asked["node_id"], asked["tool"], asked["arguments"]) == (
        "live",
        "mesh_terminal",
        {"command": "ls", "node_id": "live"},
    )

    status, listing = _http(live_hub, "GET", f"/api/v1/sessions/{sid}/messages/", token)
    rows = listing["results"]
    assert [(m["role"], m["status"]) for m in rows] == [
        ("user", "done"),
        ("assistant", "done"),
        ("tool", "done"),
        ("assistant", "done"),
    ]
    assert rows[0]["content"] == "What files are on live?"
    assert rows[0]["id"] == ids["user_message_id"] and rows[1]["id"] == ids["assistant_message_id"]
    assert rows[1]["tool_calls"][0]["name"] == "mesh_terminal"
    tool = rows[2]
    assert tool["tool_call_id"] == "call_ls"
    assert len(tool["task_ids"]) == 1
    assert "hello.txt" in tool["content"] and "notes.md" in tool["content"]
    assert rows[3]["content"] == "The directory holds hello.txt and notes.md."
    status, task = _http(live_hub, "GET", f"/api/v1/tasks/{tool['task_ids'][0]}/", token)
    assert (status, task["status"], task["stdout"]) == (200, "succeeded", "hello.txt\nnotes.md\n")
    model_saw = llm_server.requests[1]["body"]["messages"][-1]
    assert model_saw["role"] == "tool" and "hello.txt" in model_saw["content"]
    assert "Live box" in llm_server.requests[0]["body"]["messages"][0]["content"]


def test_hub_restart_mid_turn_ends_the_turn_interrupted(live_hub, llm_server, tmp_path):
    _invite, token = _setup(live_hub, llm_server.url)
    llm_server.add(Step("hang"))
    status, session = _http(live_hub, "POST", "/api/v1/sessions/", token, {})
    sid = session["id"]
    status, ids = _http(
        live_hub, "POST", f"/api/v1/sessions/{sid}/messages/", token, {"content": "Are you there?"}
    )
    assert status == 202
    wait_until(lambda: len(llm_server.requests) == 1, timeout=60)
    _, listing = _http(live_hub, "GET", f"/api/v1/sessions/{sid}/messages/", token)
    assert [m["status"] for m in listing["results"]] == ["done", "streaming"]

    live_hub.process.kill()  # no chance to clean up: as if the machine lost power
    live_hub.process.wait(timeout=10)
    live_hub.env["CORTEX_SESSIONS_STALE_AFTER"] = "2"
    live_hub.start()

    def ended() -> Any:  # the hub's sweeper ends it; reads never write
        _, listing = _http(live_hub, "GET", f"/api/v1/sessions/{sid}/messages/", token)
        rows = listing["results"]
        return rows if rows[-1]["status"] != "streaming" else None

    rows = wait_until(ended, timeout=60)
    assert [(m["role"], m["status"], m["error_code"]) for m in rows] == [
        ("user", "done", ""),
        ("assistant", "failed", "interrupted"),
    ]
    assert rows[0]["content"] == "Are you there?"
    _, events = _http(live_hub, "GET", f"/api/v1/sessions/{sid}/events/?after_seq=0", token)
    assert [e["type"] for e in events["results"]][-2:] == ["error", "message.done"]
    assert len(llm_server.requests) == 1  # nothing was re-run by itself
    status, _ = _http(
        live_hub, "POST", f"/api/v1/sessions/{sid}/messages/", token, {"content": "again"}
    )
    assert status == 202
