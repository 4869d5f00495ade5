"""Forwarded headers count only from CORTEX_TRUSTED_PROXIES: throttles and audit IPs hold.

The web process runs exactly as the image runs it (the Dockerfile's CMD, on a free loopback
port), so a `--proxy-headers` creeping back into the image fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from cortex.proxies import client_address, resolve_scope
from cortex.testing import wait_until

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/api/v1/auth/login/"


def _image_command() -> list[str]:
    match = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile has a JSON CMD"
    return json.loads(match.group(1))


def test_image_and_compose_leave_proxy_headers_to_the_hub() -> None:
    assert "--proxy-headers" not in _image_command()
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "--proxy-headers" not in compose
    assert "CORTEX_TRUSTED_PROXIES" in compose


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8", "fd00::/8"])
@pytest.mark.parametrize(
    ("peer", "xff", "client"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.5", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # a forged left part is not believed
        ("10.0.0.5", "1.2.3.4, 10.0.0.7", "1.2.3.4"),  # a chain of trusted proxies
        ("10.0.0.5", "bogus, 1.2.3.4", "1.2.3.4"),
        ("10.0.0.5", "1.2.3.4, bogus", "10.0.0.5"),  # unparseable: stop at the peer
        ("10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.5", "[2001:db8::1]:443", "2001:db8::1"),
        ("fd00::1", "198.51.100.7:5000", "198.51.100.7"),
        ("::ffff:10.0.0.5", "1.2.3.4", "1.2.3.4"),  # dual-stack listener, IPv4 proxy
        ("::ffff:203.0.113.9", "1.2.3.4", "::ffff:203.0.113.9"),
    ],
)
def test_client_address(peer: str, xff: str, client: str) -> None:
    assert client_address(peer, xff) == client


@override_settings(TRUSTED_PROXIES=[])
def test_untrusted_scopes_lose_their_forwarded_headers() -> None:
    scope = {
        "type": "websocket",
        "client": ["203.0.113.9", 5555],
        "headers": [
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"X-Forwarded-Proto", b"https"),
            (b"forwarded", b"for=1.2.3.4"),
            (b"cookie", b"a=b"),
        ],
    }
    resolved = resolve_scope(scope)
    assert resolved["client"] == ["203.0.113.9", 5555]
    assert resolved["headers"] == [(b"cookie", b"a=b")]


class _Web:
    """The image's web command, on loopback, against a migrated SQLite file."""

    def __init__(self, tmp_path: Path, port: int, trusted: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CORTEX_", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS"))
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="cortex.settings",
            DATABASE_URL=f"sqlite:///{tmp_path / 'hub.sqlite3'}",
            CORTEX_VAR_DIR=str(tmp_path / "var"),
            CORTEX_TRUSTED_PROXIES=trusted,
        )
        self.manage("migrate", "--noinput", "-v", "0")
        command = _image_command()
        assert command[0] == "daphne"
        args = command[1:]
        for flag, value in (("-b", "127.0.0.1"), ("-p", str(port))):
            args[args.index(flag) + 1] = value
        self.log = open(tmp_path / "web.log", "ab")  # noqa: SIM115  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", *args],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

        def answers() -> bool:
            with urllib.request.urlopen(self.base + "/healthz", timeout=1):  # noqa: S310
                return True

        wait_until(answers, timeout=60, ignore=(OSError,), message="daphne did not start")

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def login(self, n: int, forwarded_for: str) -> int:
        body = json.dumps({"email": f"u{n}@example.com", "password": "wrong"}).encode()
        request = urllib.request.Request(  # noqa: S310  # loopback
            self.base + LOGIN,
            data=body,
            headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def audit_ips(self) -> list[str]:
        code = (
            "from accounts.models import AuditEvent;"
            "print(sorted(set(AuditEvent.objects.filter(action='auth.login.failed')"
            ".values_list('client_ip', flat=True))))"
        )
        return eval(self.manage("shell", "--no-imports", "-c", code))  # noqa: S307  # our own output

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def web(tmp_path, free_port) -> Iterator:  # type: ignore[no-untyped-def]
    started: list[_Web] = []

    def _start(trusted: str) -> _Web:
        started.append(_Web(tmp_path, free_port(), trusted))
        return started[-1]

    yield _start
    for server in started:
        server.stop()


@pytest.mark.slow
def test_rotating_forwarded_for_from_an_untrusted_peer_is_throttled_and_not_believed(web) -> None:
    server = web("")
    codes = [server.login(n, f"198.51.100.{n}") for n in range(40)]
    # login_ip allows 30 a minute per address: the loopback peer, whatever the header says.
    assert codes == [401] * 30 + [429] * 10
    assert server.audit_ips() == ["127.0.0.1"]


@pytest.mark.slow
def test_a_trusted_proxy_is_believed(web) -> None:
    server = web("127.0.0.1/32")
    codes = [server.login(n, f"6.6.6.6, 198.51.100.{n}") for n in range(40)]
    assert codes == [401] * 40  # forty clients, one attempt each
    assert server.audit_ips() == sorted({f"198.51.100.{n}" for n in range(40)})
