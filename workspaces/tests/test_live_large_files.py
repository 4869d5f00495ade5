"""Large files from the lead of a `node` workspace, with a real hub and real agents: a file
larger than one transfer reaches the hub mirror (ranged reads) with its sha256 and then the
other node; a file rewritten while it travels never leaves a torn copy anywhere."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from cortex.testing import wait_until
from workspaces.tests.test_live_node_source import _mirror
from workspaces.tests.test_live_sync import SECOND_NODE, Api, _debug, _until

pytestmark = pytest.mark.slow

MIB = 1024 * 1024


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def world(module_live_hub, tmp_path_factory) -> Any:  # type: ignore[no-untyped-def]
    """One hub, the lead `live` and `live2`, and alice's `node` workspace led by `live`."""
    hub = module_live_hub
    invite1 = hub.seed_team_node()
    invite2 = json.loads(hub.manage("shell", "-v", "0", "-c", SECOND_NODE).splitlines()[-1])[
        "invite"
    ]
    api = Api(hub, hub.manage("create_api_token", "alice@example.com").strip())
    base = tmp_path_factory.mktemp("large")
    roots = [base / "n1", base / "n2"]
    for root in roots:
        root.mkdir()
    lead_dir = roots[0] / "workspace" / "proj"
    lead_dir.mkdir(parents=True)
    agents = [
        hub.start_agent(node_id="live", invite=invite1, root=roots[0]),
        hub.start_agent(node_id="live2", invite=invite2, root=roots[1]),
    ]
    try:
        for node_id in ("live", "live2"):
            _until(
                f"{node_id} online",
                lambda n=node_id: api("GET", f"/api/v1/nodes/{n}/").json()["status"] != "offline",
            )
        sid = api("POST", "/api/v1/sessions/", json={"title": "large"}).json()["id"]
        for node_id in ("live", "live2"):
            api("POST", f"/api/v1/sessions/{sid}/nodes/", json={"node_id": node_id})
        body = {"source": "node", "node_id": "live", "path": "proj"}
        patched = api("PATCH", f"/api/v1/sessions/{sid}/workspace/", json=body)
        assert patched.status_code == 200, patched.text
        other = roots[1] / "workspace" / "sessions" / str(sid)
        yield {"hub": hub, "api": api, "sid": sid, "lead": lead_dir, "other": other, "roots": roots}
    except BaseException:
        print(_debug(hub, roots))  # noqa: T201  # the logs explain a failure
        raise
    finally:
        for agent in agents:
            hub.stop_process(agent)


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except OSError:
        return None


def _downloaded(world: Any, rel: str) -> bytes:
    answer = world["api"]("GET", f"/api/v1/sessions/{world['sid']}/workspace/file/?path={rel}")
    assert answer.status_code == 200, answer.text
    return answer.content


def _staging(world: Any) -> list[str]:
    folder = world["hub"].root / "workspaces" / "staging"
    return os.listdir(folder) if folder.exists() else []


def test_a_5_mib_file_on_the_lead_reaches_the_mirror_and_the_other_node(world) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(5 * MIB + 17)
    (world["lead"] / "data").mkdir()
    (world["lead"] / "data" / "big.bin").write_bytes(data)
    try:
        _until("big.bin mirrored", lambda: _mirror(world["api"], world["sid"]).get("data/big.bin"))
        assert _mirror(world["api"], world["sid"])["data/big.bin"] == _sha(data)
        assert _downloaded(world, "data/big.bin") == data
        target = world["other"] / "data" / "big.bin"
        _until("big.bin on live2", lambda: _file_sha(target) == _sha(data))
        _until("no staging file left", lambda: _staging(world) == [])
    except BaseException:
        print(_debug(world["hub"], world["roots"]))  # noqa: T201  # the logs explain a failure
        raise


def test_a_file_rewritten_while_it_travels_is_never_torn(world) -> None:  # type: ignore[no-untyped-def]
    first, second = os.urandom(12 * MIB), os.urandom(12 * MIB)
    versions = {_sha(first), _sha(second)}
    path = world["lead"] / "moving.bin"
    path.write_bytes(first)
    try:
        # Rewrite it in place as soon as its first ranges have landed on the hub (or, on a
        # fast machine, once it is in: what is checked holds either way).
        wait_until(
            lambda: _staging(world) or "moving.bin" in _mirror(world["api"], world["sid"]),
            timeout=60,
            interval=0.02,
            message="the transfer never started",
        )
        with open(path, "r+b") as fh:
            fh.write(second)
        target = world["other"] / "moving.bin"

        def settled() -> bool:
            seen = _mirror(world["api"], world["sid"]).get("moving.bin")
            assert seen is None or seen in versions, seen  # never a torn version
            on_other = _file_sha(target)
            assert on_other is None or on_other in versions, on_other
            return seen == _sha(second) and on_other == _sha(second)

        _until("the rewritten file everywhere", settled, timeout=90)
        assert _downloaded(world, "moving.bin") == second
        _until("no staging file left", lambda: _staging(world) == [])
    except BaseException:
        print(_debug(world["hub"], world["roots"]))  # noqa: T201  # the logs explain a failure
        raise


def test_a_hub_killed_mid_transfer_resumes_and_the_file_arrives_whole(world) -> None:  # type: ignore[no-untyped-def]
    """Last in the module: it restarts the module's hub."""
    data = os.urandom(16 * MIB)
    path = world["lead"] / "across-restart.bin"
    path.write_bytes(data)
    hub = world["hub"]
    try:
        wait_until(
            lambda: _staging(world) or "across-restart.bin" in _mirror(world["api"], world["sid"]),
            timeout=60,
            interval=0.02,
            message="the transfer never started",
        )
        hub.process.kill()  # a crash: no graceful stop
        hub.process.wait(timeout=20)
        hub.start()
        target = world["other"] / "across-restart.bin"
        _until(
            "the file whole in the mirror and on live2",
            lambda: (
                _mirror(world["api"], world["sid"]).get("across-restart.bin") == _sha(data)
                and _file_sha(target) == _sha(data)
            ),
            timeout=120,
        )
        assert _downloaded(world, "across-restart.bin") == data
        _until("no staging file left", lambda: _staging(world) == [], timeout=90)
    except BaseException:
        print(_debug(hub, world["roots"]))  # noqa: T201  # the logs explain a failure
        raise
