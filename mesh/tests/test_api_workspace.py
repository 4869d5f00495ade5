"""REST: the node workspace routes of the console's file browser refuse before any task exists
(outside grants: 404; a malformed path: 400). The live path is console/tests/test_browser_files."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from mesh import services
from mesh.models import Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def nodes(staff_user, user):  # type: ignore[no-untyped-def]
    team = Group.objects.create(name="team")
    user.groups.add(team)
    mine, _ = services.node_create(actor=staff_user, node_id="mine", display_name="Mine")
    services.node_grant(actor=staff_user, node=mine, group=team)
    services.node_create(actor=staff_user, node_id="theirs", display_name="Theirs")
    return mine


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/nodes/theirs/workspace/"),
        ("get", "/api/v1/nodes/theirs/workspace/file/?path=a.txt"),
        ("delete", "/api/v1/nodes/theirs/workspace/file/?path=a.txt"),
        ("get", "/api/v1/nodes/nowhere/workspace/"),
    ],
)
def test_outside_grants_is_not_found_and_queues_nothing(nodes, user_client, method, url):
    response = getattr(user_client, method)(url)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Task.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/nodes/mine/workspace/file/"),
        ("get", "/api/v1/nodes/mine/workspace/file/?path="),
        ("delete", "/api/v1/nodes/mine/workspace/file/?path=%20"),
        ("get", "/api/v1/nodes/mine/workspace/?path=a%00b"),
        ("delete", "/api/v1/nodes/mine/workspace/file/?path=" + "a" * 4097),
    ],
)
def test_malformed_path_is_a_400_and_queues_nothing(nodes, user_client, method, url):
    response = getattr(user_client, method)(url)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    assert "path" in response.json()["error"]["fields"]
    assert Task.objects.count() == 0


def test_anonymous_is_refused(nodes, anon_client):
    response = anon_client.get("/api/v1/nodes/mine/workspace/")
    assert response.status_code in (401, 403)
    assert Task.objects.count() == 0


def test_offline_node_is_a_409_and_queues_nothing(nodes, user_client):
    for method, url in (
        ("get", "/api/v1/nodes/mine/workspace/"),
        ("delete", "/api/v1/nodes/mine/workspace/file/?path=a.txt"),
    ):
        response = getattr(user_client, method)(url)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "node_offline"
    assert Task.objects.count() == 0
