"""Shared pytest fixtures: users, API clients, and the real test services (PostgreSQL, Redis)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from rest_framework.test import APIClient

from cortex.testing import wait_until

if TYPE_CHECKING:
    import subprocess

PG_PORT = int(os.environ.get("CORTEX_TEST_PG_PORT", "55432"))
REDIS_PORT = int(os.environ.get("CORTEX_TEST_REDIS_PORT", "56379"))


#: Fixtures that start real processes: a module using one is heavy, like one marked slow.
_HEAVY_FIXTURES = frozenset({"live_hub", "module_live_hub", "browser", "page"})


def _heavy(item: pytest.Item) -> bool:
    marked = item.get_closest_marker("slow") or item.get_closest_marker("browser")
    return bool(marked) or not _HEAVY_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heavy modules first, each kept whole (its module fixtures start once per worker).

    pytest-xdist hands tests out in this order: a minutes-long test collected last runs alone
    while the other workers have nothing left, so the long ones go first and the many short
    ones fill the gaps at the end.
    """
    heavy = {item.module for item in items if _heavy(item)}  # type: ignore[attr-defined]
    items.sort(key=lambda item: item.module not in heavy)  # type: ignore[attr-defined]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """Base URL of the test PostgreSQL server that `make test` starts (scripts/services.sh)."""
    if not _port_open(PG_PORT):
        pytest.fail("PostgreSQL test server is not running: run `scripts/services.sh start`")
    return f"postgres://postgres@127.0.0.1:{PG_PORT}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the test Redis server that `make test` starts (scripts/services.sh)."""
    if not _port_open(REDIS_PORT):
        pytest.fail("Redis test server is not running: run `scripts/services.sh start`")
    return f"redis://127.0.0.1:{REDIS_PORT}/0"


def _pick_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    return _pick_free_port


@pytest.fixture
def make_user(db):  # type: ignore[no-untyped-def]
    from accounts.models import User

    counter = {"n": 0}

    def _make(email: str | None = None, *, password: str = "correct horse battery", **extra):  # type: ignore[no-untyped-def]
        counter["n"] += 1
        return User.objects.create_user(
            email=email or f"user{counter['n']}@example.com", password=password, **extra
        )

    return _make


@pytest.fixture
def user(make_user):  # type: ignore[no-untyped-def]
    return make_user("alice@example.com")


@pytest.fixture
def staff_user(make_user):  # type: ignore[no-untyped-def]
    return make_user("root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def staff_client(staff_user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


# The usual world of the live tests: root@ (admin), alice@ in group "team", node "live" ("Live
# box") granted to the team; with a model URL, alice's own llm layer points at that model.
SEED_TEAM_NODE = """
import json
from django.contrib.auth.models import Group
from accounts.models import User
from mesh import services
from preferences.services import layer_update

admin = User.objects.create_superuser(email="root@example.com", password="x-x-x-x-x-x")
user = User.objects.create_user(email="alice@example.com", password=ALICE_PASSWORD)
team = Group.objects.create(name="team")
user.groups.add(team)
node, invite = services.node_create(actor=admin, node_id="live", display_name="Live box")
services.node_grant(actor=admin, node=node, group=team)
if LLM_URL:
    layer_update(actor=user, scope="user", kind="llm", user=user,
                 data={"provider": "openai_compatible", "base_url": LLM_URL,
                       "api_key": LLM_KEY, "model": "test-model"})
seeded = {"invite": invite}
if ALICE_TOKEN:  # what `manage.py create_api_token alice@example.com` makes
    from accounts.context import AuditContext
    from accounts.services.tokens import token_create

    _, seeded["token"] = token_create(actor=None, user=user, name="cli",
                                      audit_context=AuditContext.command("create_api_token"))
print(json.dumps(seeded))
"""


class LiveHub:
    """A real hub process (`manage.py serve`) on loopback with its own SQLite database file."""

    def __init__(self, root, env: dict[str, str], http_port: int, grpc_port: int) -> None:  # type: ignore[no-untyped-def]
        self.root = root
        self.env = env
        self.http_url = f"http://127.0.0.1:{http_port}"
        self.grpc_address = f"127.0.0.1:{grpc_port}"
        self.process: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str, check: bool = True) -> str:
        """Run a management command against this hub's database; returns stdout."""
        import subprocess
        import sys

        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def seed_team_node(self) -> str:
        """An admin, alice in group "team", and node "live" granted to it; returns its invite."""
        return str(self.seed()["invite"])

    def seed(
        self,
        llm_url: str = "",
        *,
        token: bool = False,
        alice_password: str = "x-x-x-x-x-x",
        then: str = "",
    ) -> dict[str, Any]:
        """The one way to make a live hub's world: SEED_TEAM_NODE (alice's model at `llm_url`
        when given, an API token of alice's when `token`), then the code `then`, in one
        `manage.py shell` (a process start costs seconds). Returns the JSON objects the code
        printed, merged: {"invite": ..., "token": ...} and whatever `then` prints."""
        import json
        import textwrap

        from providers.tests.conftest import API_KEY

        values = (
            f"LLM_URL = {llm_url!r}\nLLM_KEY = {API_KEY!r}\n"
            f"ALICE_PASSWORD = {alice_password!r}\nALICE_TOKEN = {token!r}\n"
        )
        code = values + textwrap.dedent(SEED_TEAM_NODE) + textwrap.dedent(then)
        printed: dict[str, Any] = {}
        for line in self.manage("shell", "-v", "0", "-c", code).splitlines():
            if line.startswith("{"):
                printed.update(json.loads(line))
        return printed

    def start(self) -> None:
        import subprocess
        import sys

        log = open(self.root / "hub.log", "ab")  # noqa: SIM115  # closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "serve",
                "--http",
                self.http_url.removeprefix("http://"),
                "--grpc",
                self.grpc_address,
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            self._healthy, timeout=120, message=lambda: f"hub did not start: {self.log()[-3000:]}"
        )

    def _healthy(self) -> bool:
        """True once /healthz answers 200; a hub that exited fails at once with its log."""
        import urllib.request

        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"hub exited: {self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(self.http_url + "/healthz", timeout=1) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        import signal

        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except Exception:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return (self.root / "hub.log").read_text(errors="replace")

    def start_agent(self, *, node_id: str, invite: str, root, workspace=None):  # type: ignore[no-untyped-def]
        """A real agent (`python -m mesh.agent`) joining this hub; logs to root/agent.log."""
        import subprocess
        import sys

        import yaml

        workspace = workspace or root / "workspace"
        config = root / "agent_config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "hub": {"address": self.grpc_address},
                    "node_id": node_id,
                    "invite_token": invite,
                    "state_dir": str(root / "agent-state"),
                    "workspace_root": str(workspace),
                    "reconnect": {"initial_s": 0.2, "max_s": 1.0},
                }
            )
        )
        log = open(root / "agent.log", "wb")  # noqa: SIM115  # closed with the process
        return subprocess.Popen(
            [sys.executable, "-m", "mesh.agent", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    @staticmethod
    def stop_process(process) -> None:  # type: ignore[no-untyped-def]
        """SIGTERM, then SIGKILL if it has not exited within 20 s."""
        import signal
        import subprocess

        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _live_hub_env(root) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="cortex.test_settings",
        DATABASE_URL=f"sqlite:///{root / 'hub.sqlite3'}",
        CORTEX_MEDIA_ROOT=str(root / "media"),
        CORTEX_WORKSPACE_ROOT=str(root / "workspaces"),
        CORTEX_HEARTBEAT_INTERVAL="1",
        CORTEX_RECONNECT_GRACE="3",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def _migrated_hub_db(tmp_path_factory):  # type: ignore[no-untyped-def]
    """One migrated SQLite database per test process, copied for every live hub: `migrate`
    costs seconds of CPU, and dozens of live-hub tests each needed a fresh one."""
    root = tmp_path_factory.mktemp("hub-template")
    LiveHub(root, _live_hub_env(root), 0, 0).manage("migrate", "--noinput", "-v", "0")
    return root / "hub.sqlite3"


def _started_live_hub(root, template, extra_env: dict[str, Any]) -> LiveHub:  # type: ignore[no-untyped-def]
    """A hub on free ports over a copy of the migrated template database, started. A value of
    `extra_env` may be a function of the hub: its addresses are known only here."""
    import sqlite3

    hub = LiveHub(root, _live_hub_env(root), _pick_free_port(), _pick_free_port())
    hub.env.update({k: str(v(hub)) if callable(v) else v for k, v in extra_env.items()})
    # The backup API copies the template whole, its write-ahead log included.
    source, copy = sqlite3.connect(template), sqlite3.connect(root / "hub.sqlite3")
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    hub.start()
    return hub


@pytest.fixture
def live_hub(request, tmp_path, _migrated_hub_db):  # type: ignore[no-untyped-def]
    """A migrated hub serving HTTP/WS and gRPC as a separate process; stopped after the test.

    A test that needs more environment marks itself `@pytest.mark.live_hub_env(NAME=value)`
    (a value may be a function of the hub, e.g. `lambda hub: hub.http_url`): the hub starts
    with it, instead of being stopped and started again (a start costs seconds of CPU)."""
    marker = request.node.get_closest_marker("live_hub_env")
    hub = _started_live_hub(tmp_path, _migrated_hub_db, dict(marker.kwargs) if marker else {})
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def module_live_hub_env() -> dict[str, str]:
    """Extra environment for `module_live_hub`; a module overrides this fixture to set it."""
    return {}


@pytest.fixture(scope="module")
def module_live_hub(tmp_path_factory, _migrated_hub_db, module_live_hub_env):  # type: ignore[no-untyped-def]
    """One live hub shared by the tests of a module (a hub start costs seconds of CPU): for
    tests that leave nothing behind that another test of the module would see."""
    hub = _started_live_hub(
        tmp_path_factory.mktemp("module-hub"), _migrated_hub_db, module_live_hub_env
    )
    yield hub
    hub.stop()
