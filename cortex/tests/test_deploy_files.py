"""The image and compose files, checked by structure (no Docker daemon runs here), and their
healthcheck commands run for real against a live hub; the console's pinned browser libraries.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_migrate_finishes_before_web_and_mesh_start(compose) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("web", "mesh"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }, name


def test_every_long_running_service_has_a_healthcheck(compose) -> None:
    services = compose["services"]
    for name in ("web", "mesh", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/healthz" in services["web"]["healthcheck"]["test"][-1]
    assert "grpc_health" in services["mesh"]["healthcheck"]["test"][-1]


def test_nodes_are_told_the_public_addresses(compose) -> None:
    for name in ("web", "mesh", "migrate"):
        environment = compose["services"][name]["environment"]
        assert environment["CORTEX_PUBLIC_GRPC_ADDRESS"].startswith("${CORTEX_PUBLIC_GRPC_ADDRESS")
        assert environment["CORTEX_PUBLIC_URL"].startswith("${CORTEX_PUBLIC_URL")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert compose["services"]["mesh"]["command"][-2:] == ["--address", "0.0.0.0:50051"]


def test_dockerfile_builds_assets_with_node_and_collects_static_files() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, re.M)
    assert stages[0] == ("debian:trixie-slim", "assets")
    assert stages[-1][0].startswith("python:3.11")
    assert "apt-get install -y --no-install-recommends nodejs npm" in text
    assert "npm ci" in text and "scripts/vendor_static.py" in text
    assert "COPY --from=assets /src/console/static/vendor console/static/vendor" in text
    assert "node_modules" not in text.split("# Stage 2")[1]  # only dist files reach the hub
    assert "manage.py collectstatic --noinput" in text
    assert "CORTEX_STATIC_ROOT=/app/staticfiles" in text


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    entries = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".venv", "var", ".env", "**/node_modules", "test-artifacts", ".git"):
        assert entry in entries, entry


def test_make_run_and_test_install_and_collect() -> None:
    text = (ROOT / "Makefile").read_text()
    run = text.split("\nrun:")[1].split("\n\n")[0]
    test = text.split("\ntest:")[1].split("\n\n")[0]
    vendor = text.split("\nvendor:")[1].split("\n\n")[0]
    assert "vendor" in run and "manage.py collectstatic --noinput" in run
    assert run.index("collectstatic") < run.index("manage.py serve")
    assert "vendor" in test
    assert "npm ci" in vendor and "scripts/vendor_static.py" in vendor


def test_browser_libraries_are_pinned_and_vendored() -> None:
    package = json.loads((ROOT / "console" / "package.json").read_text())
    lock = json.loads((ROOT / "console" / "package-lock.json").read_text())
    wanted = {"marked", "dompurify", "uplot", "@xterm/xterm", "@xterm/addon-fit"}
    assert set(package["dependencies"]) == wanted
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    # The copies under console/static/vendor/ are exactly what npm installed from the lock.
    done = subprocess.run(
        [sys.executable, "scripts/vendor_static.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _healthcheck(compose: dict[str, Any], service: str) -> list[str]:
    test = compose["services"][service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    return [sys.executable, *test[2:]]


@pytest.mark.slow
def test_compose_healthchecks_pass_against_a_real_hub(compose, live_hub) -> None:
    """The exact commands compose runs, pointed at a live hub's ports, report healthy."""
    http_port = live_hub.http_url.rsplit(":", 1)[1]
    web = _healthcheck(compose, "web")
    web[-1] = web[-1].replace("localhost:8000", f"localhost:{http_port}")
    subprocess.run(web, check=True, timeout=30)
    mesh = _healthcheck(compose, "mesh")
    mesh[-1] = mesh[-1].replace("127.0.0.1:50051", live_hub.grpc_address)
    subprocess.run(mesh, check=True, timeout=30)
    # And they fail when nothing answers.
    live_hub.stop()
    assert subprocess.run(web, check=False, timeout=30, capture_output=True).returncode != 0
    assert subprocess.run(mesh, check=False, timeout=30, capture_output=True).returncode != 0
