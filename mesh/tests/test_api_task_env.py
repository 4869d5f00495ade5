"""Task `env`: values only for the requester; the hub refuses what the node refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from mesh.agent.envpolicy import env_name_refusal
from mesh.agent.skills.shell import EnvRefused, build_env
from mesh.models import Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def granted_node(user, make_node, grant):  # type: ignore[no-untyped-def]
    node, _ = make_node("n1")
    grant(user, node)
    return node


def _client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_only_the_requester_sees_env_values(
    user_client, user, make_user, grant, granted_node, staff_client
) -> None:
    created = user_client.post(
        "/api/v1/nodes/n1/tasks/",
        {"command": "deploy", "env": {"DEPLOY_TOKEN": "s3cr3t-value", "STAGE": "prod"}},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["payload"]["env"] == {"DEPLOY_TOKEN": "s3cr3t-value", "STAGE": "prod"}
    task_id = created.json()["id"]
    mine = user_client.get(f"/api/v1/tasks/{task_id}/").json()
    assert mine["payload"]["env"] == {"DEPLOY_TOKEN": "s3cr3t-value", "STAGE": "prod"}

    colleague = make_user("colleague@example.com")
    grant(colleague, granted_node)  # same group, same node
    for client in (_client(colleague), staff_client):
        detail = client.get(f"/api/v1/tasks/{task_id}/")
        listing = client.get("/api/v1/nodes/n1/tasks/")
        assert detail.status_code == 200 and listing.status_code == 200
        assert detail.json()["payload"]["env"] == {"DEPLOY_TOKEN": "********", "STAGE": "********"}
        assert listing.json()["results"][0]["payload"]["env"] == {
            "DEPLOY_TOKEN": "********",
            "STAGE": "********",
        }
        assert "s3cr3t-value" not in detail.content.decode() + listing.content.decode()


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "ld_preload",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "BASH_ENV",
        "BASH_FUNC_x",
        "ENV",
        "PATH",
        "IFS",
        "PS4",
        "PROMPT_COMMAND",
        "SHELLOPTS",
        "BASHOPTS",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_KEY_0",
        "GIT_CONFIG_VALUE_0",
        "GIT_CONFIG_PARAMETERS",
        "GIT_SSH_COMMAND",
        "PERL5LIB",
        "PERL5OPT",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONWARNINGS",
        "NODE_OPTIONS",
        "NODE_PATH",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "GCONV_PATH",
        "GLIBC_TUNABLES",
        "OPENSSL_CONF",
        "HOME",
        "XDG_CONFIG_HOME",
        "EDITOR",
        "GIT_PAGER",
        "SSH_ASKPASS",
        "MAKEFLAGS",
    ],
)
def test_hub_refuses_the_names_the_node_refuses(user_client, granted_node, name: str) -> None:
    response = user_client.post(
        "/api/v1/nodes/n1/tasks/",
        {"command": "ls", "env": {"OK": "1", name: "x"}},
        format="json",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["fields"]["env"] == [f"The variable {name} may not be set by a task."]
    assert Task.objects.count() == 0
    # The node refuses the very same name.
    with pytest.raises(EnvRefused, match=name):
        build_env(allow=(), fixed={}, declared={name: "x"}, home=Path("/tmp"))


@pytest.mark.parametrize(
    "name", ["STAGE", "DEPLOY_TOKEN", "NODE_ENV", "GIT_AUTHOR_NAME", "PYTHONUNBUFFERED", "LANG"]
)
def test_ordinary_names_pass(name: str) -> None:
    assert env_name_refusal(name) == ""


def test_invalid_names_are_refused_with_their_name(user_client, granted_node) -> None:
    response = user_client.post(
        "/api/v1/nodes/n1/tasks/", {"command": "ls", "env": {"A B": "x"}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["env"] == ["'A B' is not a valid variable name."]
