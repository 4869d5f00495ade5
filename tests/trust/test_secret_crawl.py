"""Every secret the hub holds, counted in everything the hub says: the count must be 0.

Secrets: provider keys at the system, group and user layers, personal API tokens, node invite
tokens, a node credential (a real Join over gRPC), the OIDC client secret. Places: every GET
route of the URL conf (with real object ids) as the admin and as a user, every admin changelist
and change page, the preferences export, WebSocket frames (a node console while the node prints
the secrets, the session stream, /ws/me/), every log record (DEBUG) and every audit row.
A node that prints a stored provider key or the OIDC secret has it masked before storage, so
the task output API, console frames and the model's view of the output never hold it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib import admin
from django.test import Client
from django.urls import get_resolver
from rest_framework.test import APIClient

from accounts.tests.test_url_protection import CATCH_ALL_NAMES
from mesh.agent.pb import mesh_pb2
from mesh.tests.meshkit import TestNode, join
from tests.trust.figures import record
from tests.trust.test_cross_group import (
    NOT_OBJECTS,
    _kwarg_names,
    _object_ids,
    _path_for,
    _routes,
    _values_for,
)
from tests.trust.world import GROUP_KEY, OIDC_SECRET, SYSTEM_KEY, USER_KEY, World, build_world

ORIGIN = (b"origin", b"http://testserver")
ADMIN_OBJECTS_PER_MODEL = 5


def _dump(response: Any) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    cookies = "\n".join(str(c) for c in response.cookies.values())
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return f"{response.status_code}\n{headers}\n{cookies}\n{body.decode(errors='replace')}"


def _get_routes(world: World) -> list[str]:
    """A GET path for every route, with alpha's real ids where the route names an object."""
    ids = _object_ids(world)
    paths = []
    for pieces, pattern in _routes(get_resolver()):
        if pattern.name in CATCH_ALL_NAMES:
            continue
        kwargs = [k for piece in pieces for k in _kwarg_names(piece)]
        values = _values_for(pattern.name or "", kwargs, ids, 0) or {}
        if [k for k in kwargs if k not in NOT_OBJECTS and k not in values]:
            values = {}
        paths.append(_path_for(pieces, values))
    return paths


def _http_crawl(world: World) -> tuple[list[str], int]:
    """Everything the hub answers to GETs of the admin, alpha and bravo, and the admin site."""
    seen: list[str] = []
    callers: list[Client] = []
    for user in (world.admin, world.a.user, world.b.user):
        api = APIClient()
        api.force_authenticate(user)
        callers.append(api)
    for token in (world.a.token, world.b.token):
        bearer = APIClient()
        bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        callers.append(bearer)
    site = Client()
    site.force_login(world.admin)
    callers.append(site)
    checked = 0
    for path in _get_routes(world):
        for client in callers:
            seen.append(_dump(client.get(path)))
            checked += 1
    seen.append(_dump(callers[1].get("/api/v1/preferences/export/")))
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        base = f"/admin/{meta.app_label}/{meta.model_name}/"
        seen.append(_dump(site.get(base)))
        seen.append(_dump(site.get(base + "add/")))
        checked += 2
        for pk in model_admin.get_queryset(_admin_request(world)).values_list("pk", flat=True)[
            :ADMIN_OBJECTS_PER_MODEL
        ]:
            seen.append(_dump(site.get(f"{base}{pk}/change/")))
            checked += 1
    return seen, checked


def _admin_request(world: World) -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = world.admin
    return request


async def _frames(path: str, ticket: str, *, until: str = "", seconds: float = 1.0) -> list[Any]:
    """Frames of one WebSocket connect (until a frame of type `until`, or `seconds` of quiet)."""
    from cortex.asgi import application

    ws = WebsocketCommunicator(application, f"{path}?ticket={ticket}", headers=[ORIGIN])
    frames: list[Any] = []
    connected, _ = await ws.connect(timeout=10)
    try:
        async with asyncio.timeout(20):
            while connected and not await ws.receive_nothing(timeout=seconds):
                frame = await ws.receive_output(timeout=5)
                frames.append(frame)
                if until and until in frame.get("text", ""):
                    break
    finally:
        await ws.disconnect()
    return frames


def _audit_and_stored_output(world: World) -> str:
    from accounts.models import AuditEvent
    from mesh.models import Task, TaskOutputChunk

    rows = [json.dumps(list(AuditEvent.objects.values()), default=str)]
    rows.append(
        "\n".join(
            bytes(c).decode(errors="replace")
            for c in TaskOutputChunk.objects.values_list("data", flat=True)
        )
    )
    rows.append(json.dumps(list(Task.objects.values("error_message", "result")), default=str))
    return "\n".join(rows)


@pytest.mark.django_db(transaction=True)
async def test_no_secret_anywhere(mesh_address, staff_user, settings, caplog):
    from accounts.services import ws_ticket_issue
    from mesh import services as mesh_services
    from mesh.models import Node
    from mesh.selectors import task_text
    from tools.base import ToolContext
    from tools.services import tool_invoke

    caplog.set_level(logging.DEBUG)
    settings.OIDC_RP_CLIENT_SECRET = OIDC_SECRET
    world = await sync_to_async(build_world)(staff_user)
    secrets = world.secrets()
    secrets["oidc client secret"] = OIDC_SECRET
    # A real Join: the node credential exists only on the node's side and on this wire.
    credential = await join(mesh_address, "alpha-node", world.invites["alpha-node"])
    secrets["node credential (alpha-node)"] = credential
    fresh_invite = await sync_to_async(mesh_services.invite_issue)(
        actor=staff_user, node=await sync_to_async(Node.objects.get)(node_id="bravo-node")
    )
    secrets["invite token (bravo-node, reissued)"] = fresh_invite
    issue = sync_to_async(ws_ticket_issue)
    seen: list[str] = []

    node = TestNode(mesh_address, "alpha-node", credential)
    await node.connect()
    beat = node.keep_beating()
    from cortex.asgi import application

    console = WebsocketCommunicator(
        application,
        f"/ws/nodes/alpha-node/?ticket={await issue(user=staff_user)}",
        headers=[ORIGIN],
    )
    assert (await console.connect(timeout=10))[0]
    try:
        alpha_node = await sync_to_async(Node.objects.get)(node_id="alpha-node")
        task = await sync_to_async(mesh_services.task_dispatch)(
            actor=world.a.user,
            node=alpha_node,
            kind="shell",
            payload={"command": "env"},
            chat_session_id=world.a.session_id,
        )
        assign = (await node.recv("task_assign")).task_assign
        while assign.task_id != str(task.pk):  # alpha's earlier queued task comes first
            assign = (await node.recv("task_assign")).task_assign
        await node.send(task_started=mesh_pb2.TaskStarted(task_id=assign.task_id))
        printed = [
            f"OPENAI_API_KEY={SYSTEM_KEY}\n".encode(),
            f"group={GROUP_KEY} user={USER_KEY}\n".encode(),
            f"OIDC_RP_CLIENT_SECRET={OIDC_SECRET}\n".encode(),
        ]
        for seq, data in enumerate(printed, start=1):
            await node.output(assign.task_id, seq, data)
            await node.recv("output_ack")
        await node.result(
            assign.task_id,
            exit_code=0,
            last_seq=len(printed),
            error_message=f"leaked {SYSTEM_KEY}",
        )
        await node.recv("result_ack")
        async with asyncio.timeout(20):
            while True:
                frame = await console.receive_output(timeout=10)
                seen.append(json.dumps(frame, default=str))
                if "task.finished" in frame.get("text", ""):
                    break
    finally:
        await console.disconnect()
        beat.cancel()
        await node.hang_up()

    # What the model reads of the output (the same text a tool result carries).
    stdout, stderr = await sync_to_async(task_text)(task=task)
    assert stdout.count("[masked]") == 4, stdout
    seen.append(stdout + stderr)
    ticket_a = await issue(user=world.a.user)
    seen.extend(
        json.dumps(f, default=str)
        for f in await _frames(f"/ws/sessions/{world.a.session_id}/", ticket_a)
    )
    for user in (staff_user, world.a.user):
        seen.extend(
            json.dumps(f, default=str) for f in await _frames("/ws/me/", await issue(user=user))
        )
    seen.extend(
        json.dumps(f, default=str)
        for f in await _frames(
            "/ws/nodes/alpha-node/", await issue(user=world.a.user) + "&after_seq=0"
        )
    )
    waited = await sync_to_async(tool_invoke)(
        context=ToolContext(
            user=world.a.user,
            chat_session_id=world.a.session_id,
            attached_nodes={"alpha-node": "/"},
        ),
        name="mesh_wait_tasks",
        arguments={"task_ids": [str(task.pk)], "timeout": 1},
    )
    seen.append(waited.text + json.dumps(waited.data, default=str))
    crawled, checked = await sync_to_async(_http_crawl)(world)
    seen.extend(crawled)
    everything = "\n".join(seen)
    logs = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    stored = await sync_to_async(_audit_and_stored_output)(world)
    counts = {
        label: {
            "responses+frames": everything.count(secret),
            "logs": logs.count(secret),
            "audit+stored output": stored.count(secret),
        }
        for label, secret in secrets.items()
    }
    total = sum(sum(where.values()) for where in counts.values())
    found = {label: where for label, where in counts.items() if sum(where.values())}
    await sync_to_async(record)(
        "secret_occurrences",
        total,
        checked=checked,
        detail=json.dumps(found, indent=1) if found else "",
        source="tests/trust/test_secret_crawl.py (every GET route, admin pages, export, "
        "WS frames, logs, audit, stored node output)",
    )
    # The crawl reached real pages (not just refusals) and the masked text did arrive.
    assert everything.count("alpha-private-session") > 2
    assert "[masked]" in everything
    assert checked > 300
    assert not found, json.dumps(found, indent=1)
