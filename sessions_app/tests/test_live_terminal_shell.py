"""The AI's persistent shell: mesh_terminal with persistent=true against a real agent's PTY."""

from __future__ import annotations

import json

import pytest

from cortex.testing import wait_until
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.tests.test_live_turn import _chat_on_live, _http, _post_and_approve, _watch

pytestmark = pytest.mark.slow


def _call(call_id: str, command: str) -> str:
    return json.dumps({"command": command, "node_id": "live", "persistent": True})


def test_cd_and_exports_persist_between_calls(live_hub, llm_server, tmp_path):
    agent, token, sid = _chat_on_live(live_hub, llm_server.url, tmp_path, "sh")
    try:
        commands = [
            ("c1", "cd /tmp && export FOO=bar-$((20+1))"),
            ("c2", "pwd; echo \"foo=$FOO\"; printf 'no newline'"),
            ("c3", "echo ':e:0 :b'; (exit 3)"),
        ]
        for call_id, command in commands:
            llm_server.add(openai_tool_call([(call_id, "mesh_terminal", _call(call_id, command))]))
        llm_server.add(openai_text(["Done."]))

        act = _post_and_approve(live_hub, token, sid, "Work in /tmp.")
        _watch(live_hub, token, sid, act)
        status, listing = _http(live_hub, "GET", f"/api/v1/sessions/{sid}/messages/", token)
        tools = [m for m in listing["results"] if m["role"] == "tool"]
        assert [t["tool_call_id"] for t in tools] == ["c1", "c2", "c3"]
        assert tools[0]["content"] == "[live] exit 0\n"
        assert tools[1]["content"] == "[live] exit 0\n/tmp\nfoo=bar-21\nno newline"
        assert tools[2]["content"] == "[live] exit 3\n:e:0 :b\n"
        # One shell served all three: one recorded terminal session for this chat.
        status, terms = _http(live_hub, "GET", "/api/v1/nodes/live/terminals/", token)
        assert (status, terms["count"]) == (200, 1)
    finally:
        live_hub.stop_process(agent)


@pytest.mark.parametrize("ending", ["archive", "delete"])
def test_the_shell_hangs_up_when_the_chat_ends(live_hub, llm_server, tmp_path, ending):
    """Archiving or deleting the chat hangs up its persistent shell on the node (the node
    reports the shell's end: SIGHUP, 128 + 1), and the close is audited."""
    agent, token, sid = _chat_on_live(live_hub, llm_server.url, tmp_path, "sh")
    try:
        llm_server.add(openai_tool_call([("c1", "mesh_terminal", _call("c1", "cd /tmp"))]))
        llm_server.add(openai_text(["Done."]))

        act = _post_and_approve(live_hub, token, sid, "Go.")
        _watch(live_hub, token, sid, act)

        def terminals() -> list[dict]:
            return _http(live_hub, "GET", "/api/v1/nodes/live/terminals/", token)[1]["results"]

        (shell,) = terminals()
        assert shell["status"] == "running"
        if ending == "archive":
            status, _ = _http(
                live_hub, "PATCH", f"/api/v1/sessions/{sid}/", token, {"is_archived": True}
            )
            assert status == 200
        else:
            status, _ = _http(live_hub, "DELETE", f"/api/v1/sessions/{sid}/", token)
            assert status == 204
        ended = wait_until(
            lambda: [t for t in terminals() if t["status"] not in ("opening", "running")],
            timeout=60,
        )
        assert [(t["id"], t["status"], t["exit_code"]) for t in ended] == [
            (shell["id"], "exited", 129)
        ]
        admin = live_hub.manage("create_api_token", "root@example.com").strip()
        status, audit = _http(
            live_hub, "GET", f"/api/v1/audit/?action=terminal.close&target_id={shell['id']}", admin
        )
        assert status == 200, audit
        assert [e["action"] for e in audit["results"]] == ["terminal.close"]
    finally:
        live_hub.stop_process(agent)
