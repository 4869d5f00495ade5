"""Large files from the lead of a `node` workspace, with a real hub and real agents: a file
larger than one transfer reaches the hub mirror (ranged reads) with its sha256 and then the
other node; a file rewritten while it travels never leaves a torn copy anywhere."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from cortex.testing import wait_until
from workspaces.tests.conftest import LiveNodes, until
from workspaces.tests.test_live_node_source import _mirror

pytestmark = pytest.mark.slow

MIB = 1024 * 1024


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def world(live_nodes_world: LiveNodes) -> Any:
    """The module's hub with `live` and `live2` (conftest), and alice's `node` workspace led
    by `live`."""
    nodes = live_nodes_world
    lead_dir = nodes.roots["live"] / "workspace" / "proj"
    lead_dir.mkdir(parents=True)
    sid = nodes.session({"source": "node", "node_id": "live", "path": "proj"}, ("live", "live2"))
    return {
        "hub": nodes.hub,
        "api": nodes.api,
        "sid": sid,
        "lead": lead_dir,
        "other": nodes.folder("live2", sid),
        "nodes": nodes,
    }


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
        until("big.bin mirrored", lambda: _mirror(world["api"], world["sid"]).get("data/big.bin"))
        assert _mirror(world["api"], world["sid"])["data/big.bin"] == _sha(data)
        assert _downloaded(world, "data/big.bin") == data
        target = world["other"] / "data" / "big.bin"
        until("big.bin on live2", lambda: _file_sha(target) == _sha(data))
        until("no staging file left", lambda: _staging(world) == [])
    except BaseException:
        print(world["nodes"].debug())  # noqa: T201  # the logs explain a failure
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

        until("the rewritten file everywhere", settled, timeout=90)
        assert _downloaded(world, "moving.bin") == second
        until("no staging file left", lambda: _staging(world) == [])
    except BaseException:
        print(world["nodes"].debug())  # noqa: T201  # the logs explain a failure
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
        until(
            "the file whole in the mirror and on live2",
            lambda: (
                _mirror(world["api"], world["sid"]).get("across-restart.bin") == _sha(data)
                and _file_sha(target) == _sha(data)
            ),
            timeout=120,
        )
        assert _downloaded(world, "across-restart.bin") == data
        until("no staging file left", lambda: _staging(world) == [], timeout=90)
    except BaseException:
        print(world["nodes"].debug())  # noqa: T201  # the logs explain a failure
        raise
