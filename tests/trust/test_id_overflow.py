"""What fuzzing found, kept as regression tests: out-of-range ids are input errors (never a
500), and the bundle's errors are JSON labelled as JSON.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db

HUGE = 2**70


def test_huge_ids_in_bodies_are_input_errors(staff_client, staff_user):
    from mesh import services

    services.node_create(actor=staff_user, node_id="box", display_name="Box")
    group = Group.objects.create(name="ops")
    calls = [
        ("post", "/api/v1/nodes/box/access/", {"group": HUGE}),
        ("post", f"/api/v1/admin/groups/{group.pk}/members/", {"user": HUGE}),
        (
            "post",
            "/api/v1/skills/",
            {"name": "s1", "description": "d", "features": ["chat"], "shared_with_groups": [HUGE]},
        ),
        (
            "post",
            "/api/v1/admin/tool-switches/",
            {"tool_name": "browser", "group": HUGE, "enabled": False},
        ),
    ]
    audit = staff_client.get("/api/v1/audit/", {"actor": "-5.56e155"})
    assert audit.status_code == 400
    assert staff_client.get("/api/v1/audit/", {"actor": str(HUGE)}).status_code == 400
    answers = {
        path: getattr(staff_client, method)(path, body, format="json").status_code
        for method, path, body in calls
    }
    assert {path: status < 500 for path, status in answers.items()} == dict.fromkeys(
        answers, True
    ), answers


def test_bundle_errors_are_json_even_when_the_zip_was_asked_for(staff_client, user_client):
    """Found by fuzzing: `?format=zip` labelled the JSON error body application/zip."""
    for client in (staff_client, user_client):
        response = client.get("/api/v1/nodes/no-such-node/bundle/", {"format": "zip"})
        assert (response.status_code, response["Content-Type"]) == (404, "application/json")
        assert response.json()["error"]["code"] == "not_found"
