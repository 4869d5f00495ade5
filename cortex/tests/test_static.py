"""Static files in every mode: `manage.py serve` and daphne, with DEBUG and in production.

The production cases run `collectstatic` into a temporary STATIC_ROOT (as `make run` and the
image build do) and start real processes with CORTEX_DEBUG=0: the admin's stylesheet answers,
pages link hashed names that are cached for good and sent compressed. A fresh checkout needs
no prior collectstatic: the test settings serve the apps' static folders directly.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.testing import HttpCommunicator
from cryptography.fernet import Fernet

from cortex.testing import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310  # loopback only
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def _production_env(root: Path, static_root: Path) -> dict[str, str]:
    """What an operator sets: real settings module, DEBUG off, keys, a collected STATIC_ROOT."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "CORTEX_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="cortex.settings",
        CORTEX_DEBUG="0",
        CORTEX_SECRET_KEY="static-files-test-" + "k" * 40,
        CORTEX_FIELD_KEYS=Fernet.generate_key().decode(),
        CORTEX_SECURE_SSL_REDIRECT="0",
        CORTEX_STATIC_ROOT=str(static_root),
        CORTEX_MEDIA_ROOT=str(root / "media"),
        DATABASE_URL=f"sqlite:///{root / 'hub.sqlite3'}",
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=300)


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict[str, str]:
    """Static files collected once (hashing, gzip and Brotli take a while), a migrated DB."""
    root = tmp_path_factory.mktemp("production")
    env = _production_env(root, root / "static")
    _manage(env, "collectstatic", "--noinput", "-v", "0")
    _manage(env, "migrate", "--noinput", "-v", "0")
    return env


def _start(argv: list[str], env: dict[str, str], base: str, log: Path) -> subprocess.Popen:
    with log.open("ab") as sink:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{argv[2]} exited: {log.read_text()[-3000:]}")
        return _get(base + "/healthz")[0] == 200

    try:
        wait_until(
            healthy,
            timeout=60,
            ignore=(OSError,),
            message=lambda: f"{argv[2]} did not answer: {log.read_text()[-3000:]}",
        )
    except AssertionError:
        process.kill()
        raise
    return process


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def live_daphne(production, tmp_path) -> Iterator[str]:
    """daphne serving `cortex.asgi:application` with CORTEX_DEBUG=0, as the image runs it."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    process = _start([*argv, "cortex.asgi:application"], production, base, tmp_path / "d.log")
    yield base
    _stop(process)


@pytest.fixture
def live_serve_production(production, tmp_path) -> Iterator[str]:
    """`manage.py serve` with CORTEX_DEBUG=0 and collected static files."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "manage.py", "serve", "--http", f"127.0.0.1:{port}", "--no-grpc"]
    process = _start(argv, production, base, tmp_path / "serve.log")
    yield base
    _stop(process)


def _assert_admin_styled(base: str, *, hashed: bool) -> None:
    status, headers, body = _get(base + "/static/admin/css/base.css")
    assert status == 200
    assert headers["content-type"].startswith("text/css")
    assert headers["x-content-type-options"] == "nosniff"
    assert b"body" in body
    page = _get(base + "/admin/login/")[2].decode()
    links = re.findall(r'<link rel="stylesheet" href="(/static/admin/css/[^"]+)"', page)
    assert "/static/admin/css/base.css" not in links if hashed else links
    for link in links:
        status, headers, _ = _get(base + link)
        assert status == 200, link
        assert headers["content-type"].startswith("text/css"), link
    if hashed:
        link = next(link for link in links if re.fullmatch(r".*/base\.[0-9a-f]{12}\.css", link))
        _, headers, body = _get(base + link, {"Accept-Encoding": "br, gzip"})
        assert headers["cache-control"] == "max-age=315360000, public, immutable"
        assert headers["content-encoding"] == "br"
        assert headers["vary"] == "Accept-Encoding"
        _, headers, _ = _get(base + link, {"Accept-Encoding": "gzip"})
        assert headers["content-encoding"] == "gzip"


def _assert_console_assets(base: str, *, hashed: bool) -> None:
    page = _get(base + "/console/login/")[2].decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert len(assets) >= 3  # the stylesheet, common.js, login.js
    for asset in assets:
        assert bool(re.search(r"\.[0-9a-f]{12}\.(?:js|css)$", asset)) == hashed, asset
        assert _get(base + asset)[0] == 200, asset


@pytest.mark.slow
def test_admin_is_styled_under_daphne_in_production(live_daphne) -> None:
    _assert_admin_styled(live_daphne, hashed=True)
    _assert_console_assets(live_daphne, hashed=True)
    # The API docs' Swagger UI comes from drf-spectacular-sidecar's static files.
    docs = _get(live_daphne + "/api/v1/docs/")[2].decode()
    bundle = re.search(r'src="(/static/drf_spectacular_sidecar/[^"]+swagger-ui-bundle[^"]+)"', docs)
    assert bundle, docs[:2000]
    assert _get(live_daphne + bundle[1])[0] == 200


@pytest.mark.slow
def test_admin_is_styled_under_serve_in_production(live_serve_production) -> None:
    _assert_admin_styled(live_serve_production, hashed=True)
    _assert_console_assets(live_serve_production, hashed=True)


@pytest.mark.slow
def test_admin_is_styled_under_serve_in_development(live_hub) -> None:
    """The fresh-checkout case: no collectstatic, DEBUG on, files from the apps' folders."""
    _assert_admin_styled(live_hub.http_url, hashed=False)
    _assert_console_assets(live_hub.http_url, hashed=False)


async def _asgi_get(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    from cortex.asgi import application

    headers = [(b"host", b"testserver"), *(headers or [])]
    communicator = HttpCommunicator(application, "GET", path, headers=headers)
    return await communicator.get_response(timeout=10)


@pytest.mark.django_db
async def test_static_files_are_answered_before_django() -> None:
    response = await _asgi_get("/static/console/common.js")
    assert response["status"] == 200
    headers = dict(response["headers"])
    assert headers[b"content-type"].startswith(b"text/javascript")
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert b"access-control-allow-origin" not in headers  # only the hub's own pages use them
    assert response["body"].startswith(b"/*")
    # Vendored browser libraries are ordinary static files too.
    assert (await _asgi_get("/static/vendor/marked/marked.umd.js"))["status"] == 200


@pytest.mark.django_db
async def test_static_files_start_no_thread_per_request(monkeypatch) -> None:
    """ServeStatic would read each file in a one-thread pool of its own; the wrapper does not."""
    await _asgi_get("/static/admin/css/base.css")  # Django's own setup may start threads
    started: list[str] = []
    original = threading.Thread.start

    def spy(thread: threading.Thread) -> None:
        started.append(thread.name)
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", spy)
    bodies = set()
    for path in ("/static/admin/css/base.css", "/static/console/common.js"):
        for _ in range(3):
            response = await _asgi_get(path)
            assert response["status"] == 200
            bodies.add(response["body"][:40])
    assert started == []
    assert len(bodies) == 2
    expected = (ROOT / "console" / "static" / "console" / "common.js").read_bytes()
    assert (await _asgi_get("/static/console/common.js"))["body"] == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/../cortex/settings.py",
        "/static/console/../../cortex/settings.py",
        "/static/%2e%2e/cortex/settings.py",
        "/static/console/views.py",
        "/static/",
    ],
)
async def test_unknown_static_paths_fall_through_to_a_404(path: str) -> None:
    response = await _asgi_get(path)
    assert response["status"] == 404
    assert b"SECRET_KEY" not in response["body"]
