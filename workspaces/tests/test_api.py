"""The workspace REST API on the hub mirror: shapes, ownership, the path rule, caps, audit."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditEvent
from mesh.tests.postgres_rerun import in_child, rerun_on_postgresql
from sessions_app.models import ChatSession
from workspaces.models import WorkspaceFile

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(user) -> ChatSession:
    return ChatSession.objects.create(owner=user, title="ws")


def _url(session: ChatSession, tail: str = "") -> str:
    return f"/api/v1/sessions/{session.pk}/workspace/{tail}"


def _put(client: Any, session: ChatSession, path: str, body: bytes) -> Any:
    return client.put(
        _url(session, "file/") + "?path=" + path, data=body, content_type="application/octet-stream"
    )


@pytest.fixture
def hub_ws(user_client, session) -> ChatSession:
    response = user_client.patch(_url(session), {"source": "hub"}, format="json")
    assert response.status_code == 200, response.content
    return session


def test_default_is_none(user_client, session) -> None:
    response = user_client.get(_url(session))
    assert response.status_code == 200
    assert response.json() == {"source": "none", "node_id": None, "path": "", "nodes": []}


def test_configure_hub_is_audited(user_client, session, user) -> None:
    response = user_client.patch(_url(session), {"source": "hub"}, format="json")
    assert response.json() == {"source": "hub", "node_id": None, "path": "", "nodes": []}
    event = AuditEvent.objects.get(action="workspace.configure")
    assert (event.actor_id, event.target_id, event.details["source"]) == (
        user.pk,
        str(session.pk),
        "hub",
    )


def test_node_source_needs_an_attached_node(user_client, session) -> None:
    response = user_client.patch(
        _url(session), {"source": "node", "node_id": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    assert "node_id" in response.json()["error"]["fields"]


def test_node_source_with_an_attached_node(user_client, session, staff_user, user) -> None:
    from mesh import services as mesh_services
    from sessions_app.models import SessionNode

    node, _ = mesh_services.node_create(actor=staff_user, node_id="box-1", display_name="Box")
    group = Group.objects.create(name="devs")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=node, group=group)
    SessionNode.objects.create(session=session, node=node)
    body = {"source": "node", "node_id": "box-1", "path": "code/./app/"}
    response = user_client.patch(_url(session), body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["node_id"] == "box-1"
    assert response.json()["path"] == "code/app"
    bad = user_client.patch(_url(session), {**body, "path": "../etc"}, format="json")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "path_outside_workspace")


def test_write_list_read_delete(user_client, hub_ws, user) -> None:
    body = b"print('hi')\n"
    response = _put(user_client, hub_ws, "src/app.py", body)
    assert response.status_code == 200, response.content
    digest = hashlib.sha256(body).hexdigest()
    assert response.json()["path"] == "src/app.py"
    assert (response.json()["size"], response.json()["sha256"]) == (len(body), digest)
    assert _put(user_client, hub_ws, "README.md", b"# r").status_code == 200

    top = user_client.get(_url(hub_ws, "files/")).json()["results"]
    assert [(e["path"], e["kind"]) for e in top] == [
        (".skills", "directory"),
        ("src", "directory"),
        ("README.md", "file"),
    ]
    inner = user_client.get(_url(hub_ws, "files/") + "?path=src").json()["results"]
    assert [(e["path"], e["kind"], e["size"], e["sha256"]) for e in inner] == [
        ("src/app.py", "file", len(body), digest)
    ]

    got = user_client.get(_url(hub_ws, "file/") + "?path=src/app.py")
    assert got.status_code == 200
    assert b"".join(got.streaming_content) == body

    assert user_client.delete(_url(hub_ws, "file/") + "?path=src").status_code == 204
    assert user_client.get(_url(hub_ws, "file/") + "?path=src/app.py").status_code == 404
    assert _mine() == ["README.md"]
    actions = list(
        AuditEvent.objects.filter(action__startswith="workspace.").values_list("action", flat=True)
    )
    assert sorted(actions) == sorted(
        ["workspace.configure", "workspace.write", "workspace.write", "workspace.delete"]
    )


def _mine() -> list[str]:
    """Manifest paths but the published skills."""
    return list(
        WorkspaceFile.objects.exclude(path__startswith=".skills/").values_list("path", flat=True)
    )


def _skill_bytes() -> int:
    return sum(
        WorkspaceFile.objects.filter(path__startswith=".skills/").values_list("size", flat=True)
    )


def test_skills_appear_under_dot_skills(user_client, hub_ws) -> None:
    from tools.selectors import skill_list_for_user

    names = {e.name for e in skill_list_for_user(user=hub_ws.owner) if e.is_enabled}
    assert names, "the hub ships system skills"
    listing = user_client.get(_url(hub_ws, "files/") + "?path=.skills").json()["results"]
    assert {e["path"] for e in listing} == {f".skills/{n}" for n in names}
    name = sorted(names)[0]
    got = user_client.get(_url(hub_ws, "file/") + f"?path=.skills/{name}/SKILL.md")
    assert got.status_code == 200
    assert name.encode() in b"".join(got.streaming_content)


def test_overwrite_keeps_one_row(user_client, hub_ws) -> None:
    _put(user_client, hub_ws, "a.txt", b"one")
    _put(user_client, hub_ws, "a.txt", b"two!")
    row = WorkspaceFile.objects.exclude(path__startswith=".skills/").get()
    assert (row.path, row.size) == ("a.txt", 4)


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("../escape.txt", "path_outside_workspace"),
        ("a/../../escape.txt", "path_outside_workspace"),
        ("/etc/passwd", "path_outside_workspace"),
        ("~/x", "path_outside_workspace"),
        ("C:/x", "path_outside_workspace"),
        ("a/..", "path_outside_workspace"),
        ("..%2Fx", "path_outside_workspace"),
        ("a%5C..%5Cx", "invalid_path"),
        ("a%00b", "invalid_path"),
        ("a%0Ab", "invalid_path"),
        ("", "invalid_path"),
        (".", "invalid_path"),
    ],
)
def test_bad_paths_are_400_everywhere(user_client, hub_ws, path: str, code: str) -> None:
    put = _put(user_client, hub_ws, path, b"x")
    assert (put.status_code, put.json()["error"]["code"]) == (400, code)
    for method in ("get", "delete"):
        answer = getattr(user_client, method)(_url(hub_ws, "file/") + "?path=" + path)
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, code)
    if path not in ("", "."):
        listing = user_client.get(_url(hub_ws, "files/") + "?path=" + path)
        assert (listing.status_code, listing.json()["error"]["code"]) == (400, code)
    assert _mine() == []
    assert not AuditEvent.objects.filter(action="workspace.write").exists()


def test_file_and_folder_may_not_share_a_path(user_client, hub_ws) -> None:
    assert _put(user_client, hub_ws, "a/b.txt", b"x").status_code == 200
    clash = _put(user_client, hub_ws, "a", b"x")
    assert (clash.status_code, clash.json()["error"]["code"]) == (409, "workspace_path_conflict")
    under = _put(user_client, hub_ws, "a/b.txt/c", b"x")
    assert (under.status_code, under.json()["error"]["code"]) == (409, "workspace_path_conflict")


def test_per_file_cap_is_413(user_client, hub_ws, settings) -> None:
    settings.WORKSPACE_MAX_FILE_BYTES = 10
    response = _put(user_client, hub_ws, "big.bin", b"x" * 11)
    assert (response.status_code, response.json()["error"]["code"]) == (
        413,
        "workspace_file_too_large",
    )
    assert _mine() == []
    assert _put(user_client, hub_ws, "ok.bin", b"x" * 10).status_code == 200


def test_workspace_cap_is_413(user_client, hub_ws, settings) -> None:
    settings.WORKSPACE_MAX_BYTES = _skill_bytes() + 10  # the published skills count too
    assert _put(user_client, hub_ws, "a.bin", b"x" * 6).status_code == 200
    response = _put(user_client, hub_ws, "b.bin", b"x" * 5)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "workspace_too_large")
    assert _mine() == ["a.bin"]
    # Replacing a file counts its new size, not both.
    assert _put(user_client, hub_ws, "a.bin", b"x" * 10).status_code == 200


def test_source_none_refuses_files(user_client, session) -> None:
    response = _put(user_client, session, "a.txt", b"x")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "workspace_disabled")


def test_another_users_session_is_404(hub_ws, make_user) -> None:
    from rest_framework.test import APIClient

    other = APIClient()
    other.force_authenticate(make_user("other@example.com"))
    for method, tail in (("get", ""), ("patch", ""), ("get", "files/"), ("get", "file/?path=a")):
        answer = getattr(other, method)(
            _url(hub_ws, tail), {"source": "hub"} if method == "patch" else None, format="json"
        )
        assert answer.status_code == 404, (method, tail)
    answer = other.put(_url(hub_ws, "file/?path=a"), data=b"x", content_type="text/plain")
    assert answer.status_code == 404
    assert _mine() == []


def test_anonymous_is_refused(anon_client, hub_ws) -> None:
    assert anon_client.get(_url(hub_ws)).status_code in (401, 403)


@pytest.mark.skipif(not in_child(), reason="only in the PostgreSQL rerun")
def test_the_rerun_is_on_postgresql() -> None:
    from django.db import connection

    assert connection.vendor == "postgresql"


@pytest.mark.postgres
@pytest.mark.skipif(in_child(), reason="this is the PostgreSQL run")
def test_the_api_holds_on_postgresql(postgres_url: str) -> None:
    rerun_on_postgresql(postgres_url, "workspaces/tests/test_api.py")
