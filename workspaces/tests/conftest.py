"""Workspace test fixtures: a mirror folder of the test's own, and the live world of the
workspace tests (one hub, nodes `live` and `live2` with real agents, alice's API token)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from cortex.testing import wait_until


@pytest.fixture(autouse=True)
def mirror_root(settings: Any, tmp_path: Any) -> Any:
    settings.WORKSPACE_ROOT = tmp_path / "mirror"
    return settings.WORKSPACE_ROOT


#: `LiveHub.seed(then=...)`: a second node, `live2`, granted to the team like `live`.
SECOND_NODE = """
node2, invite2 = services.node_create(actor=admin, node_id="live2", display_name="Live two")
services.node_grant(actor=admin, node=node2, group=team)
print(json.dumps({"invite2": invite2}))
"""


def until(what: str, check: Callable[..., Any], timeout: float = 60.0) -> Any:
    """`cortex.testing.wait_until`, named by what it waits for."""
    return wait_until(check, timeout=timeout, message=f"never: {what}")


class Api:
    """The hub's REST API as one user (bearer token)."""

    def __init__(self, hub: Any, token: str) -> None:
        self.url, self.headers = hub.http_url, {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.url + path, headers=self.headers, timeout=60, **kwargs)


def states(api: Api, sid: int) -> dict[str, tuple[str, int]]:
    """node id -> (sync state, pending changes) of a session's workspace."""
    body = api("GET", f"/api/v1/sessions/{sid}/workspace/").json()
    return {n["node_id"]: (n["state"], n["pending"]) for n in body["nodes"]}


@dataclass
class LiveNodes:
    """A live hub with nodes `live` and `live2`, each served by a real agent in its own root."""

    hub: Any
    api: Api
    invites: dict[str, str]
    roots: dict[str, Path]
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_agent(self, node_id: str) -> subprocess.Popen[bytes]:
        """(Re)start the agent of `node_id`; the old process, if any, must have ended."""
        self.agents[node_id] = self.hub.start_agent(
            node_id=node_id, invite=self.invites[node_id], root=self.roots[node_id]
        )
        return self.agents[node_id]

    def wait_online(self) -> None:
        for node_id in self.roots:
            until(
                f"{node_id} online",
                lambda n=node_id: (
                    self.api("GET", f"/api/v1/nodes/{n}/").json()["status"] != "offline"
                ),
            )

    def revive(self) -> None:
        """Restart any agent a previous test killed, and wait for both nodes."""
        for node_id, agent in list(self.agents.items()):
            if agent.poll() is not None:
                self.start_agent(node_id)
        self.wait_online()

    def session(self, workspace: dict[str, Any] | None, nodes: tuple[str, ...]) -> int:
        """A new chat session with `nodes` attached and, when given, this workspace; its id."""
        sid = int(self.api("POST", "/api/v1/sessions/", json={"title": "ws"}).json()["id"])
        for node_id in nodes:
            attached = self.api("POST", f"/api/v1/sessions/{sid}/nodes/", json={"node_id": node_id})
            assert attached.status_code == 201, attached.text
        if workspace is not None:
            patched = self.api("PATCH", f"/api/v1/sessions/{sid}/workspace/", json=workspace)
            assert patched.status_code == 200, patched.text
        return sid

    def folder(self, node_id: str, sid: int) -> Path:
        """Where a `hub` workspace of session `sid` lies on `node_id`'s disk."""
        return self.roots[node_id] / "workspace" / "sessions" / str(sid)

    def debug(self) -> str:
        """The hub's log and both agents' logs (tails): what explains a failure."""
        logs = [(r / "agent.log").read_text(errors="replace")[-3000:] for r in self.roots.values()]
        return "\n---\n".join([self.hub.log()[-5000:], *logs])

    def stop(self) -> None:
        for agent in self.agents.values():
            self.hub.stop_process(agent)


@pytest.fixture(scope="module")
def live_nodes_seed() -> dict[str, Any]:
    """Extra `LiveHub.seed` arguments for `live_nodes` (`llm_url`, `then`); a module
    overrides this fixture to give alice a model or the nodes more skills."""
    return {}


@pytest.fixture(scope="module")
def live_nodes_world(module_live_hub, tmp_path_factory, live_nodes_seed) -> Iterator[LiveNodes]:  # type: ignore[no-untyped-def]
    """The module's hub seeded once (alice, her token, nodes `live` and `live2`) with both
    agents started: one hub and two agents serve every test of the module."""
    seed = dict(live_nodes_seed)
    seeded = module_live_hub.seed(
        seed.pop("llm_url", ""), token=True, then=seed.pop("then", "") + SECOND_NODE, **seed
    )
    world = LiveNodes(
        hub=module_live_hub,
        api=Api(module_live_hub, seeded["token"]),
        invites={"live": seeded["invite"], "live2": seeded["invite2"]},
        roots={n: tmp_path_factory.mktemp(n) for n in ("live", "live2")},
    )
    try:
        for node_id in world.roots:
            world.start_agent(node_id)
        world.wait_online()
        yield world
    finally:
        world.stop()


@pytest.fixture
def live_nodes(live_nodes_world: LiveNodes) -> Iterator[LiveNodes]:
    """`live_nodes_world` with both agents running. The logs are printed after each test:
    pytest shows a test's captured output only when it failed, where they explain it."""
    live_nodes_world.revive()
    yield live_nodes_world
    print(live_nodes_world.debug())  # noqa: T201
