"""Group bravo's user reaches nothing of group alpha's: every route, every method, every stream.

Every HTTP route with an object in its path is called by bravo with alpha's real ids and with
ids that do not exist: the answers must be the same refusal (404 for objects, the admin-only
403), so neither success nor existence leaks. Routes without object ids must show no trace of
alpha. Routes added later are crawled the same way; one whose object ids this test does not
know fails it until they are added to `_object_ids`.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern
from rest_framework.test import APIClient

from accounts.tests.test_url_protection import (
    CATCH_ALL_NAMES,
    _is_login_redirect,
    _sample,
    _value_for,
)
from tests.trust.figures import record
from tests.trust.world import World, build_world, snapshot

MISSING_INT = 987654
MISSING_UUID = uuid.UUID(int=7)
ORIGIN = (b"origin", b"http://testserver")
# A body with every field a create/change/dispatch route asks for, so validation is not
# what stops the call.
BODY = {
    "command": "echo cross",
    "content": "cross",
    "title": "cross",
    "name": "cross",
    "display_name": "cross",
    "node_id": "alpha-node",
    "group": 1,
    "reason": "cross",
    "model": "cross-model",
    "approval_policy": "auto",
    "working_dir": "/tmp",
}
# Not crawled here: the admin site refuses non-staff outright (the route crawl proves it) and
# the OIDC routes hold no objects.
SKIP_PREFIXES = ("/admin/", "/oidc/")


def _object_ids(world: World) -> dict[tuple[str, str], tuple[Any, Any]]:
    """(route-name prefix, kwarg) -> (alpha's value, a value that matches nothing)."""
    a = world.a
    return {
        ("", "node_id"): (a.node_id, "no-such-node"),
        ("", "group_id"): (a.group.pk, MISSING_INT),
        ("", "approval_id"): (a.approval_id, MISSING_INT),
        ("", "message_id"): (a.message_id, MISSING_INT),
        ("", "session_id"): (a.session_id, MISSING_INT),
        ("", "task_id"): (a.task_id, MISSING_UUID),
        ("", "user_id"): (a.user.pk, MISSING_INT),
        ("task-", "pk"): (a.task_id, MISSING_UUID),
        ("node-terminal-", "session"): (a.terminal_id, MISSING_UUID),
        ("session-", "pk"): (a.session_id, MISSING_INT),
        ("audit-", "pk"): (a.audit_id, MISSING_INT),
        ("my-token-", "pk"): (a.token_id, MISSING_INT),
        ("approval-rule-", "pk"): (a.rule_id, MISSING_INT),
        ("agent-", "pk"): (a.agent_id, MISSING_INT),
        ("", "agent_id"): (a.agent_id, MISSING_INT),
        ("", "run_id"): (a.run_id, MISSING_INT),
        ("admin-user-", "pk"): (a.user.pk, MISSING_INT),
        ("admin-group-", "pk"): (a.group.pk, MISSING_INT),
    }


# Route kwargs that name no object (a kind of preference, a global skill).
# Not object ids: install links carry a single-use token, which is the credential itself (an
# unknown one answers 404: mesh/tests/test_install_link_api.py).
NOT_OBJECTS = {"kind", "key", "path", "token"}


def _fill(pattern: Any, values: dict[str, Any]) -> str:
    """The sample path of `pattern`, with each named group in `values` set to that value."""
    if isinstance(pattern, RoutePattern):
        return re.sub(
            r"<(?:\w+:)?(\w+)>",
            lambda m: str(values.get(m.group(1), _value_for(pattern.converters[m.group(1)].regex))),
            str(pattern),
        )
    regex = pattern.regex.pattern
    out, i = [], 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            name = regex[i + 4 : regex.index(">", i)]
            depth, j = 0, i
            while j < len(regex):
                if regex[j] == "\\":
                    j += 2
                    continue
                depth += regex[j] == "("
                depth -= regex[j] == ")"
                j += 1
                if depth == 0:
                    break
            out.append(f"\x00{name}\x00" if name in values else regex[i:j])
            i = j
        else:
            out.append(regex[i])
            i += 1
    sample = _sample(RegexPattern("".join(out)))
    return re.sub("\x00(\\w+)\x00", lambda m: str(values[m.group(1)]), sample)


def _routes(
    resolver: URLResolver, prefix: str = "/", chain: tuple = ()
) -> list[tuple[list, URLPattern]]:
    """Every route as (list of (prefix-pattern, kwargs names) pieces, leaf pattern)."""
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found.extend(_routes(entry, prefix, (*chain, entry.pattern)))
        else:
            found.append(([*chain, entry.pattern], entry))
    return found


def _kwarg_names(pattern: Any) -> list[str]:
    if isinstance(pattern, RoutePattern):
        return list(pattern.converters)
    return list(pattern.regex.groupindex)


def _path_for(pieces: list, values: dict[str, Any]) -> str:
    return "/" + "".join(_fill(piece, values) for piece in pieces)


def _values_for(
    name: str, kwargs: list[str], ids: dict[tuple[str, str], tuple[Any, Any]], index: int
) -> dict[str, Any] | None:
    """alpha's (index 0) or missing (index 1) ids for each object kwarg; None if one is unknown."""
    values: dict[str, Any] = {}
    for kwarg in kwargs:
        if kwarg in NOT_OBJECTS:
            continue
        match = [(p, v) for (p, key), v in ids.items() if key == kwarg and name.startswith(p)]
        if not match:
            return None
        # The most specific (longest) route-name prefix wins.
        values[kwarg] = max(match, key=lambda item: len(item[0]))[1][index]
    return values


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _call(client: Any, method: str, path: str, body: dict[str, Any]) -> Any:
    if method in ("get", "delete"):
        return getattr(client, method)(path)
    if isinstance(client, APIClient):
        return getattr(client, method)(path, body, format="json")
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


def _text(response: Any) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    return headers + "\n" + response.content.decode(errors="replace")


@pytest.fixture
def world(staff_user) -> World:  # type: ignore[no-untyped-def]
    return build_world(staff_user)


@pytest.mark.django_db
def test_bravo_reaches_nothing_of_alpha_over_http(world):
    ids = _object_ids(world)
    api = _client(world.b.token)
    # Pages outside the API (the console) sign in with the session cookie.
    pages = Client()
    pages.force_login(world.b.user)
    body = {**BODY, "group": world.a.group.pk}
    before = snapshot(world)
    successes: list[str] = []
    oracles: list[str] = []
    unknown: list[str] = []
    traces: list[str] = []
    checked = 0
    for pieces, pattern in _routes(get_resolver()):
        if pattern.name in CATCH_ALL_NAMES:
            continue
        kwargs = [k for piece in pieces for k in _kwarg_names(piece)]
        objects = [k for k in kwargs if k not in NOT_OBJECTS]
        sample = _path_for(pieces, {})
        if sample.startswith(SKIP_PREFIXES):
            continue
        bravo = api if sample.startswith("/api/") else pages
        if not objects:
            for _method in ("get",):
                response = bravo.get(sample)
                checked += 1
                text = _text(response)
                leaked = [m for m in world.a.markers if m in text]
                if leaked:
                    traces.append(f"GET {sample} shows {leaked}")
            continue
        alpha_values = _values_for(pattern.name or "", kwargs, ids, 0)
        missing_values = _values_for(pattern.name or "", kwargs, ids, 1)
        if alpha_values is None or missing_values is None:
            if not sample.startswith("/api/v1/admin/"):
                unknown.append(f"{pattern.name}: {sample} (kwargs {objects})")
            continue
        alpha_path = _path_for(pieces, alpha_values)
        missing_path = _path_for(pieces, missing_values)
        for method in ("get", "post", "put", "patch", "delete"):
            got = _call(bravo, method, alpha_path, body)
            ref = _call(bravo, method, missing_path, body)
            checked += 1
            # Pages outside the API are shells that load their data through the API: one
            # that answers alpha's id exactly as a missing id (and shows no trace) serves nothing.
            shell = not sample.startswith("/api/") and got.status_code == ref.status_code
            if 200 <= got.status_code < 400 and not _is_login_redirect(got) and not shell:
                successes.append(f"{method.upper()} {alpha_path} -> {got.status_code}")
            elif got.status_code != ref.status_code:
                oracles.append(
                    f"{method.upper()} {alpha_path} -> {got.status_code}, missing -> "
                    f"{ref.status_code}"
                )
            elif not shell and got.status_code not in (401, 403, 404, 405):
                oracles.append(f"{method.upper()} {alpha_path} -> {got.status_code}")
            text = _text(got)
            leaked = [m for m in world.a.markers if m in text and m not in alpha_path]
            if leaked:
                traces.append(f"{method.upper()} {alpha_path} shows {leaked}")
    after = snapshot(world)
    changed = [key for key in before if before[key] != after[key]]
    record(
        "cross_group_successes",
        len(successes) + len(traces) + len(changed),
        checked=checked,
        detail="\n".join(successes + traces + [f"changed: {key}" for key in changed]),
        source="tests/trust/test_cross_group.py (HTTP: every route, alpha's ids vs missing ids)",
    )
    assert checked > 80
    assert not unknown, "routes with object ids the matrix does not know:\n" + "\n".join(unknown)
    assert not successes, "\n".join(successes)
    assert not traces, "\n".join(traces)
    assert not oracles, "existence leaks (alpha's id answers unlike a missing one):\n" + "\n".join(
        oracles
    )
    assert not changed, f"alpha's data changed: {changed}"


@pytest.mark.django_db
def test_list_counts_hold_only_own_and_granted_objects(world, staff_user):
    bravo = _client(world.b.token)
    nodes = bravo.get("/api/v1/nodes/").json()
    assert [n["node_id"] for n in _items(nodes)] == ["bravo-node"]
    sessions = bravo.get("/api/v1/sessions/").json()
    assert [s["id"] for s in _items(sessions)] == [world.b.session_id]
    tokens = bravo.get("/api/v1/users/me/tokens/").json()
    assert [t["name"] for t in _items(tokens)] == ["bravo-token-name"]
    tasks = bravo.get("/api/v1/nodes/bravo-node/tasks/").json()
    assert [t["id"] for t in _items(tasks)] == [str(world.b.task_id)]
    assert bravo.get("/api/v1/audit/").status_code in (403, 404)
    assert "count" not in nodes or nodes["count"] == 1
    # Positive controls: alpha sees its own, the admin sees both.
    alpha = _client(world.a.token)
    assert alpha.get(f"/api/v1/tasks/{world.a.task_id}/output/").status_code == 200
    assert alpha.get(f"/api/v1/sessions/{world.a.session_id}/approvals/").status_code == 200
    admin = APIClient()
    admin.force_authenticate(staff_user)
    assert sorted(n["node_id"] for n in _items(admin.get("/api/v1/nodes/").json())) == [
        "alpha-node",
        "bravo-node",
    ]
    record(
        "cross_group_successes",
        0,
        checked=5,
        source="tests/trust/test_cross_group.py (list counts)",
    )


def _items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict):
        for key in ("results", "items", "data"):
            if key in body:
                return list(body[key])
    return list(body)


@pytest.mark.django_db
def test_bravo_cannot_attach_or_dispatch_to_alpha_node(world):
    from mesh.models import Task
    from tools.base import ToolContext
    from tools.services import tool_invoke

    bravo = _client(world.b.token)
    tasks = Task.objects.count()
    attach = bravo.post(
        f"/api/v1/sessions/{world.b.session_id}/nodes/", {"node_id": "alpha-node"}, format="json"
    )
    missing = bravo.post(
        f"/api/v1/sessions/{world.b.session_id}/nodes/", {"node_id": "no-such-node"}, format="json"
    )
    assert (attach.status_code, missing.status_code) == (404, 404)
    assert attach.json()["error"]["code"] == missing.json()["error"]["code"]
    dispatch = bravo.post(
        "/api/v1/nodes/alpha-node/tasks/", {"command": "echo cross"}, format="json"
    )
    assert dispatch.status_code == 404
    # A model in bravo's chat naming alpha's node (even as if it were attached) runs nothing.
    results = []
    for name, arguments in (
        ("mesh_terminal", {"command": "echo cross", "node_id": "alpha-node"}),
        ("mesh_files", {"action": "list", "path": "/", "node_id": "alpha-node"}),
    ):
        result = tool_invoke(
            context=ToolContext(
                user=world.b.user,
                chat_session_id=world.b.session_id,
                attached_nodes={"alpha-node": "/srv"},
            ),
            name=name,
            arguments=arguments,
        )
        results.append(result)
        assert result.error_code, result.text
        assert result.task_ids == []
    assert Task.objects.count() == tasks
    record(
        "cross_group_successes",
        0,
        checked=4,
        source="tests/trust/test_cross_group.py (attach, REST dispatch, tool dispatch)",
    )


async def _ws_refused(path: str, ticket: str) -> bool:
    from cortex.asgi import application

    ws = WebsocketCommunicator(application, f"{path}?ticket={ticket}", headers=[ORIGIN])
    try:
        connected, _ = await ws.connect(timeout=10)
        if not connected:
            return True
        # Refused connects complete the handshake and close at once with 4401/4403.
        if await ws.receive_nothing(timeout=1):
            return False
        first = await ws.receive_output(timeout=5)
        return first.get("type") == "websocket.close" and first.get("code") in (4401, 4403)
    finally:
        await ws.disconnect()


async def _ws_frames(path: str, ticket: str) -> str:
    from cortex.asgi import application

    ws = WebsocketCommunicator(application, f"{path}?ticket={ticket}", headers=[ORIGIN])
    frames = []
    try:
        connected, _ = await ws.connect(timeout=10)
        if connected:
            deadline = 20
            while not await ws.receive_nothing(timeout=0.5) and deadline:
                deadline -= 1
                frames.append(await ws.receive_output(timeout=1))
    finally:
        await ws.disconnect()
    return json.dumps(frames, default=str)


@pytest.mark.django_db(transaction=True)
async def test_bravo_cannot_stream_alpha_objects(staff_user):
    from accounts.services import ws_ticket_issue
    from cortex.routing import websocket_urlpatterns

    world = await sync_to_async(build_world)(staff_user)
    ids = _object_ids(world)
    issue = sync_to_async(ws_ticket_issue)
    offenders, unknown = [], []
    checked = 0
    for entry in websocket_urlpatterns:
        kwargs = _kwarg_names(entry.pattern)
        values = _values_for(entry.name or "", kwargs, ids, 0)
        if values is None:
            unknown.append(str(entry.pattern))
            continue
        path = _path_for([entry.pattern], values)
        checked += 1
        if [k for k in kwargs if k not in NOT_OBJECTS]:
            if not await _ws_refused(path, await issue(user=world.b.user)):
                offenders.append(f"bravo streams {path}")
            # Positive control: alpha's own ticket is accepted.
            assert not await _ws_refused(path, await issue(user=world.a.user)), path
        else:
            frames = await _ws_frames(path, await issue(user=world.b.user))
            leaked = [m for m in world.a.markers if m in frames]
            if leaked:
                offenders.append(f"{path} shows {leaked} to bravo")
    await sync_to_async(record)(
        "cross_group_successes",
        len(offenders),
        checked=checked,
        detail="\n".join(offenders),
        source="tests/trust/test_cross_group.py (WebSocket streams)",
    )
    assert checked >= 1
    assert not unknown, f"WebSocket routes with unknown object ids: {unknown}"
    assert not offenders, "\n".join(offenders)
