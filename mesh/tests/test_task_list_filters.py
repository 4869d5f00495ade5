"""`GET /api/v1/nodes/{id}/tasks/?status=...`: the node page's task history filters."""

from __future__ import annotations

import pytest

from mesh import services
from mesh.models import Task

pytestmark = pytest.mark.django_db


def test_tasks_filter_by_status_and_refuse_unknown_ones(user, user_client, make_node, grant):
    node, _ = make_node("n1")
    grant(user, node)
    made = [
        services.task_dispatch(
            actor=user, node=node, kind="shell", payload={"command": f"echo {i}"}
        )
        for i in range(3)
    ]
    # The node never connects; two tasks end as a finished node would report them.
    Task.objects.filter(pk=made[0].pk).update(status="failed")
    Task.objects.filter(pk=made[1].pk).update(status="timed_out")
    url = f"/api/v1/nodes/{node.node_id}/tasks/"

    every = user_client.get(url).json()["results"]
    assert [t["id"] for t in every] == [str(t.pk) for t in reversed(made)]
    failing = user_client.get(url + "?status=failed,timed_out").json()["results"]
    assert [(t["id"], t["status"]) for t in failing] == [
        (str(made[1].pk), "timed_out"),
        (str(made[0].pk), "failed"),
    ]
    queued = user_client.get(url + "?status=queued").json()
    assert [t["id"] for t in queued["results"]] == [str(made[2].pk)]

    bad = user_client.get(url + "?status=failed,exploded")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_input"
    assert "exploded" in bad.json()["error"]["fields"]["status"][0]
