"""`manage.py serve`: the embedded process answers, announces its listeners and stops cleanly."""

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from cortex.testing import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", PYTHONUNBUFFERED="1")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    return env


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> int:
    """The status `url` answers with, once serve answers at all (serve must not exit first)."""

    def answer() -> int:
        assert process.poll() is None, "serve exited early"
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
            return int(response.status)

    return wait_until(answer, timeout=timeout, ignore=(OSError,), message=f"{url} never answered")


@pytest.mark.slow
def test_serve_answers_health_and_admin_then_stops_on_sigterm(hub_env, free_port, tmp_path):
    http, grpc = free_port(), free_port()
    out = tmp_path / "serve.out"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "serve",
                "--http",
                f"127.0.0.1:{http}",
                "--grpc",
                f"127.0.0.1:{grpc}",
            ],
            cwd=ROOT,
            env=hub_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            assert _wait_for(f"http://127.0.0.1:{http}/healthz", process) == 200
            assert _wait_for(f"http://127.0.0.1:{http}/admin/login/", process) == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = out.read_text()
    assert f"HTTP + WebSocket on http://127.0.0.1:{http}/" in text
    assert f"gRPC for nodes on 127.0.0.1:{grpc}" in text
    assert "Traceback" not in text


@pytest.mark.slow
def test_make_run_admin_bootstrap_prints_a_generated_password_once(hub_env):
    first = subprocess.run(
        [sys.executable, "manage.py", "ensure_admin"],
        cwd=ROOT,
        env=hub_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert first.stdout.startswith("Created admin admin@localhost with password ")
    second = subprocess.run(
        [sys.executable, "manage.py", "ensure_admin"],
        cwd=ROOT,
        env=hub_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert second.stdout.strip() == "An admin exists already; sign in with your admin account."
