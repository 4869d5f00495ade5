"""The browser contract without a browser: the action schema, the domain policy (fail closed on
odd URLs), and the hub's checks before and after a node does browser work."""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import socket
import struct
import zlib
from typing import Any

import pytest
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from cortex.errors import ValidationFailed
from mesh import services
from mesh.agent.browser_actions import (
    ACTIONS,
    ARGUMENTS,
    ActionError,
    BrowserPolicy,
    json_schema,
    url_refusal,
    validate_action,
)
from mesh.agent.sandbox import Policy
from mesh.agent.skills.browser import BrowserError, BrowserSessions
from mesh.models import Node, Task, TaskStatus
from mesh.services.browser import BrowserApprovalRequired, EvaluateNotAllowed, UrlNotAllowed
from tools.definitions.browser import Browser

# -- the schema ------------------------------------------------------------------------------


def test_the_tool_schema_is_built_from_the_contract() -> None:
    schema = Browser.parameters
    assert schema["properties"]["action"]["enum"] == list(ACTIONS)
    assert set(schema["properties"]) == {*ARGUMENTS, "action", "node_id", "timeout"}
    assert schema["required"] == ["node_id", "action"]
    assert json_schema()["additionalProperties"] is False
    # Every argument an action names exists, and every argument is used by some action.
    used = {name for a in ACTIONS.values() for name in (*a.required, *a.optional, *a.one_of)}
    assert used | {"tab"} == set(ARGUMENTS)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"action": "navigate"}, "navigate needs 'url'."),
        ({"action": "navigate", "url": "javascript:alert(1)"}, "'url' is not a valid value"),
        ({"action": "type", "selector": "#a"}, "type needs 'text'."),
        ({"action": "type", "text": "x"}, "type needs exactly one of ref or selector."),
        ({"action": "select", "ref": "e1"}, "select needs 'value'."),
        ({"action": "hover", "ref": "12"}, "'ref' is not a valid value for hover."),
        ({"action": "scroll", "amount": True}, "'amount' is not a valid value for scroll."),
        ({"action": "scroll", "ref": "e1", "selector": "#a"}, "scroll takes a ref or a selector"),
        ({"action": "wait", "text": "a", "selector": "#a"}, "wait takes a text or an element"),
        ({"action": "tab_select"}, "tab_select needs 'tab'."),
        ({"action": "tab_select", "tab": 0}, "'tab' is not a valid value for tab_select."),
        ({"action": "screenshot", "session": "1"}, "'session' is not an argument of screenshot."),
        ({"action": "evaluate", "script": "1", "confirmed": True}, "'confirmed' is not an arg"),
        ({"action": "click", "selector": "#a", "url": "https://x.org"}, "'url' is not an arg"),
        ({"action": 3}, "action must be one of"),
        ([], "The arguments must be an object."),
    ],
)
def test_invalid_payloads_are_refused_with_a_reason(payload: Any, message: str) -> None:
    with pytest.raises(ActionError) as caught:
        validate_action(payload)
    assert caught.value.message.startswith(message)


def test_the_node_accepts_the_hub_keys_and_nothing_else() -> None:
    payload = {"action": "evaluate", "script": "1", "session": "4", "confirmed": True}
    assert validate_action(payload, extra=("session", "confirmed")) == payload


def test_actions_that_enter_data_are_writes_and_scripts_always_ask() -> None:
    tool = Browser()
    risks = {name: tool.call_risk({"action": name}) for name in ACTIONS}
    assert sorted(n for n, r in risks.items() if r == "write") == [
        "evaluate",
        "press",
        "select",
        "type",
    ]
    assert [n for n in ACTIONS if tool.approval_reason({"action": n})] == ["evaluate"]
    assert tool.approval_reason({"action": "evaluate"}) == "browser_evaluate"


# -- the domain policy -----------------------------------------------------------------------

OPEN = BrowserPolicy()
LOOPBACK_ONLY = BrowserPolicy.from_dict({"allowed_domains": ["127.0.0.1"]})
LISTS = BrowserPolicy.from_dict(
    {"allowed_domains": ["example.com", "*.docs.org"], "denied_domains": ["bad.example.com"]}
)


@pytest.mark.parametrize(
    "url",
    [
        "http://user@example.com/",
        "http://user:pw@example.com/",
        "http://example.com@10.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[2001:db8::1]/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.0.01/",
        "http://1.2.3.4.5/",
        "http://bücher.de/",
        "http://xn--bcher-kva.de/",
        "http://www.xn--80ak6aa92e.com/",
        "http://exa%6dple.com/",
        "http://example.com\\@evil.com/",
        "http://exam ple.com/",
        "http://example.com\t/",
        "file:///etc/passwd",
        "ftp://example.com/",
        "javascript:alert(1)",
        "data:text/html,hi",
        "http:///path",
        "http://example.com:99999/",
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://224.0.0.1/",
        "http://a.123/",
        "",
        None,
    ],
)
def test_odd_or_private_urls_are_refused_fail_closed(url: Any) -> None:
    assert url_refusal(OPEN, url) is not None


@pytest.mark.parametrize("url", ["https://example.com/", "http://EXAMPLE.com.:8080/a?b#c"])
def test_plain_public_urls_pass_the_open_policy(url: str) -> None:
    assert url_refusal(OPEN, url) is None


def test_loopback_only_where_the_policy_names_it() -> None:
    assert url_refusal(LOOPBACK_ONLY, "http://127.0.0.1:8123/x") is None
    assert url_refusal(LOOPBACK_ONLY, "http://127.0.0.2/") is not None  # not that address
    assert url_refusal(LOOPBACK_ONLY, "https://example.com/") is not None  # an allow-list
    assert url_refusal(LOOPBACK_ONLY, "http://localhost/") is not None  # names stay names


def test_allow_and_deny_lists() -> None:
    assert url_refusal(LISTS, "https://example.com/") is None
    assert url_refusal(LISTS, "https://www.example.com/") is None
    assert url_refusal(LISTS, "https://bad.example.com/") == (
        "bad.example.com is denied by the node's browser policy"
    )
    assert url_refusal(LISTS, "https://x.bad.example.com/") is not None
    assert url_refusal(LISTS, "https://notexample.com/") is not None
    assert url_refusal(LISTS, "https://docs.org/") is not None  # *. covers subdomains only
    assert url_refusal(LISTS, "https://a.docs.org/") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "browser must be an object"),
        ({"allowed": []}, "browser: unknown keys: allowed"),
        ({"allowed_domains": "example.com"}, "browser.allowed_domains must be a list of strings"),
        ({"denied_domains": ["exa mple.com"]}, "is not a host name, IP or network"),
        ({"denied_domains": ["bücher.de"]}, "is not a host name, IP or network"),
        ({"allowed_domains": ["1.2.3"]}, "is not a host name, IP or network"),
        ({"allow_evaluate": "yes"}, "browser.allow_evaluate must be true or false"),
    ],
)
def test_bad_browser_policies_are_refused(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Policy.from_dict({"mode": "permissive", "browser": value})


def test_the_sandbox_policy_carries_the_browser_part_only_when_set() -> None:
    assert "browser" not in Policy.from_dict({"mode": "strict"}).to_dict()
    stored = Policy.from_dict({"browser": {"allowed_domains": ["Example.com "]}}).to_dict()
    assert stored["browser"] == {
        "allowed_domains": ["example.com"],
        "denied_domains": [],
        "allow_private_networks": False,
        "allow_evaluate": False,
        "allow_downloads": True,
    }


async def test_the_node_refuses_a_name_that_resolves_to_a_private_address(tmp_path) -> None:
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    if all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        pytest.skip(f"{name} resolves to public addresses only on this machine")
    assert url_refusal(OPEN, f"http://{name}/") is None  # the hub cannot know without DNS
    sessions = BrowserSessions(policy=lambda: OPEN, downloads_root=lambda: tmp_path)
    refusal = await sessions.refusal(f"http://{name}:8080/")
    assert refusal is not None and refusal.startswith(f"{name} resolves to ")
    with pytest.raises(BrowserError) as caught:
        await sessions.run({"action": "navigate", "url": f"http://{name}/"}, 10)
    assert (caught.value.code, caught.value.rejected) == ("url_not_allowed", True)
    assert sessions._browser is None  # refused before any browser started


async def test_the_node_refuses_all_browser_work_without_a_readable_policy(tmp_path) -> None:
    sessions = BrowserSessions(policy=lambda: None, downloads_root=lambda: tmp_path)
    with pytest.raises(BrowserError) as caught:
        await sessions.run({"action": "text"}, 10)
    assert caught.value.code == "policy_unreadable"
    with pytest.raises(BrowserError) as caught:
        await sessions.run({"action": "evaluate", "script": "1"}, 10)
    assert caught.value.code == "policy_unreadable"


async def test_the_node_runs_scripts_only_with_policy_and_approval(tmp_path) -> None:
    allowed = BrowserPolicy.from_dict({"allow_evaluate": True})
    for policy, payload, code in (
        (OPEN, {"action": "evaluate", "script": "1", "confirmed": True}, "evaluate_not_allowed"),
        (allowed, {"action": "evaluate", "script": "1"}, "confirmation_required"),
    ):
        sessions = BrowserSessions(
            policy=functools.partial(lambda p: p, policy), downloads_root=lambda: tmp_path
        )
        with pytest.raises(BrowserError) as caught:
            await asyncio.wait_for(sessions.run(payload, 10), 10)
        assert (caught.value.code, caught.value.rejected) == (code, True)


# -- the hub ---------------------------------------------------------------------------------


@pytest.fixture
def web(make_node, grant, user) -> Node:  # type: ignore[no-untyped-def]
    node, _ = make_node("web", skill_config={"browser": True})
    Node.objects.filter(pk=node.pk).update(capabilities={"browser": True})
    node.refresh_from_db()
    grant(user, node)
    return node


def _policy(node: Node, browser: dict[str, Any]) -> None:
    Node.objects.filter(pk=node.pk).update(
        sandbox_policy={**node.sandbox_policy, "browser": browser}
    )
    node.refresh_from_db()


def test_browser_work_needs_a_reported_browser(user, make_node, grant) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("quiet", skill_config={"browser": True})  # no hello yet: no capability
    grant(user, node)
    with pytest.raises(services.CapabilityMissing):
        services.task_dispatch(actor=user, node=node, kind="browser", payload={"action": "tabs"})
    assert not Task.objects.exists()


def test_the_hub_adds_the_chat_session_and_refuses_callers_who_set_it(user, web) -> None:  # type: ignore[no-untyped-def]
    task = services.task_dispatch(
        actor=user, node=web, kind="browser", payload={"action": "snapshot"}, chat_session_id=9
    )
    assert task.payload == {"action": "snapshot", "session": "9"}
    api = services.task_dispatch(actor=user, node=web, kind="browser", payload={"action": "tabs"})
    assert api.payload == {"action": "tabs", "session": ""}
    with pytest.raises(ValidationFailed) as caught:
        services.task_dispatch(
            actor=user, node=web, kind="browser", payload={"action": "tabs", "session": "9"}
        )
    assert caught.value.fields == {"action": ["'session' is not an argument of tabs."]}


def test_a_refused_url_is_audited_and_queues_nothing(user, web) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UrlNotAllowed) as caught:
        services.task_dispatch(
            actor=user,
            node=web,
            kind="browser",
            payload={"action": "navigate", "url": "http://169.254.169.254/"},
        )
    assert caught.value.message == (
        "Refused: 169.254.169.254 is a private or local address; the node's policy does not "
        "allow it."
    )
    assert not Task.objects.exists()
    event = AuditEvent.objects.get(action="task.refused")
    assert (event.details["node_id"], event.details["action"]) == ("web", "navigate")


def test_scripts_need_the_node_policy_and_a_confirmation(user, web) -> None:  # type: ignore[no-untyped-def]
    payload = {"action": "evaluate", "script": "() => 1"}
    with pytest.raises(EvaluateNotAllowed):
        services.task_dispatch(actor=user, node=web, kind="browser", payload=dict(payload))
    _policy(web, {"allow_evaluate": True})
    with pytest.raises(BrowserApprovalRequired):
        services.task_dispatch(actor=user, node=web, kind="browser", payload=dict(payload))
    assert not Task.objects.exists()
    task = services.task_dispatch(
        actor=user, node=web, kind="browser", payload=dict(payload), confirmed=True
    )
    assert task.payload == {**payload, "session": "", "confirmed": True}
    # A confirmed read carries no mark: only what needed the approval does.
    read = services.task_dispatch(
        actor=user, node=web, kind="browser", payload={"action": "text"}, confirmed=True
    )
    assert read.payload == {"action": "text", "session": ""}


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_a_screenshot_is_stored_apart_and_served_to_who_may_see_the_task(
    user, web, user_client, make_user, settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path)
    task = services.task_dispatch(
        actor=user, node=web, kind="browser", payload={"action": "screenshot"}
    )
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    png = _png()
    services.task_finish(
        node_id="web",
        task_id=str(task.pk),
        outcome="SUCCEEDED",
        exit_code=0,
        result={"png_base64": base64.b64encode(png).decode(), "bytes": len(png), "tab": 1},
    )
    task.refresh_from_db()
    shot = task.result["screenshot"]
    assert task.result["tab"] == 1 and "png_base64" not in task.result
    assert (shot["stored"], shot["bytes"], shot["url"]) == (
        True,
        len(png),
        f"/api/v1/tasks/{task.pk}/screenshot/",
    )
    response = user_client.get(shot["url"])
    assert (response.status_code, response["Content-Type"]) == (200, "image/png")
    assert b"".join(response.streaming_content) == png
    other = APIClient()
    other.force_authenticate(make_user("mallory@example.com"))
    response = other.get(shot["url"])
    assert response.status_code == 404


def test_a_result_that_is_not_a_png_is_not_stored(user, web, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path)
    task = services.task_dispatch(
        actor=user, node=web, kind="browser", payload={"action": "screenshot"}
    )
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    services.task_finish(
        node_id="web",
        task_id=str(task.pk),
        outcome="SUCCEEDED",
        result={"png_base64": base64.b64encode(b"<svg onload=x>").decode()},
    )
    task.refresh_from_db()
    assert task.result == {"screenshot": {"stored": False, "reason": "not a PNG or too large"}}
    assert not default_storage.exists(f"mesh/browser/{task.pk}.png")


def test_ending_a_chat_closes_its_browser_on_each_node(
    user, web, make_node, grant, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from sessions_app import services as chat

    plain, _ = make_node("plain")  # no browser: nothing to close there
    grant(user, plain)
    session = chat.session_create(actor=user, title="web")
    chat.node_attach(actor=user, session=session, node_id="web")
    chat.node_attach(actor=user, session=session, node_id="plain")
    sid = session.pk
    with django_capture_on_commit_callbacks(execute=True):
        chat.session_delete(actor=user, session=session)
    task = Task.objects.get()
    assert (task.kind, task.payload, task.chat_session_id) == (
        "browser",
        {"action": "close", "session": str(sid)},
        sid,
    )


# -- the policy on the wire ------------------------------------------------------------------


def test_admins_set_the_browser_policy_and_bad_ones_are_a_400(staff_client, make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("n1")
    browser = {"allowed_domains": ["intranet.example", "10.0.0.0/8"], "allow_evaluate": True}
    response = staff_client.patch(
        "/api/v1/nodes/n1/", {"sandbox_policy": {"browser": browser}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["sandbox_policy"]["browser"] == {
        "allowed_domains": ["intranet.example", "10.0.0.0/8"],
        "denied_domains": [],
        "allow_private_networks": False,
        "allow_evaluate": True,
        "allow_downloads": True,
    }
    bad = staff_client.patch(
        "/api/v1/nodes/n1/",
        {"sandbox_policy": {"browser": {"denied_domains": ["http://x/"]}}},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"]["sandbox_policy"] == [
        "browser.denied_domains: 'http://x/' is not a host name, IP or network"
    ]
    assert Node.objects.get(node_id="n1").sandbox_policy["browser"]["allow_evaluate"] is True


def test_the_agent_reads_the_browser_policy_from_the_wire_and_fails_closed() -> None:
    from mesh.agent.pb import mesh_pb2
    from mesh.agent.tasks import browser_policy_from_pb
    from mesh.grpc.messages import policy_pb

    stored = Policy.from_dict({"browser": {"allowed_domains": ["127.0.0.1"]}}).to_dict()
    wire = policy_pb(stored)
    assert browser_policy_from_pb(wire) == BrowserPolicy.from_dict(
        {"allowed_domains": ["127.0.0.1"]}
    )
    assert browser_policy_from_pb(policy_pb({"mode": "strict"})) == BrowserPolicy()
    for garbage in ("{", '{"allow_evaluate": "yes"}', "[]", '{"future_rule": 1}'):
        assert browser_policy_from_pb(mesh_pb2.SandboxPolicy(browser_policy_json=garbage)) is None


def test_archiving_a_chat_or_detaching_the_node_closes_its_browser(
    user, web, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from sessions_app import services as chat

    session = chat.session_create(actor=user, title="web")
    attachment = chat.node_attach(actor=user, session=session, node_id="web")
    with django_capture_on_commit_callbacks(execute=True):
        chat.session_update(actor=user, session=session, data={"title": "renamed"})
    assert not Task.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        chat.session_update(actor=user, session=session, data={"is_archived": True})
    with django_capture_on_commit_callbacks(execute=True):
        chat.node_detach(actor=user, attachment=attachment)
    assert [t.payload for t in Task.objects.order_by("created_at")] == [
        {"action": "close", "session": str(session.pk)},
        {"action": "close", "session": str(session.pk)},
    ]


def test_a_page_text_and_snapshot_read_as_text_for_the_model() -> None:
    from tools.task_render import task_block

    item = {
        "task_id": "t1",
        "node_id": "web",
        "kind": "browser",
        "status": "succeeded",
        "exit_code": 0,
        "error_code": "",
        "error_message": "",
        "stdout": "",
        "stderr": "",
        "result": {"snapshot": '- button "Go" [ref=e3]\n- link "Docs" [ref=e4]', "tab": 1},
    }
    assert task_block(item) == (
        '[web] task t1: succeeded, exit code 0\n{\n "tab": 1\n}\n'
        'snapshot:\n- button "Go" [ref=e3]\n- link "Docs" [ref=e4]'
    )


def test_no_one_is_asked_to_approve_a_script_the_node_refuses_anyway(web) -> None:  # type: ignore[no-untyped-def]
    tool = Browser()
    script = {"action": "evaluate", "script": "() => 1"}
    assert tool.refused_anyway(script, [web]) is True
    assert tool.refused_anyway({"action": "type", "ref": "e1", "text": "x"}, [web]) is False
    _policy(web, {"allow_evaluate": True})
    assert tool.refused_anyway(script, [web]) is False
