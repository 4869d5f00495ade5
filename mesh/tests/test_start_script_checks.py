"""run.sh and bootstrap.py check the machine before installing anything.

Each case runs the real script with a PATH holding only bash and the interpreters of the case:
a Python that is too old, one whose `venv`/`ensurepip` are missing (as on Debian without
python3-venv), too little disk. It must stop with its message and a non-zero exit, and create or
start nothing (no .venv, no agent state).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.services.provisioning import provisioning_write
from mesh.tests.agent_pythons import find_python

pytestmark = pytest.mark.django_db

BASH = shutil.which("bash") or "/bin/bash"
OLD_PYTHONS = ("3.8", "3.7", "3.6")


@pytest.fixture
def bundle(make_node, staff_user, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    node, _ = make_node("py-check")
    directory = tmp_path / "bundle"
    provisioning_write(actor=staff_user, node=node, directory=directory)
    return directory


def old_python() -> str:
    for version in OLD_PYTHONS:
        python = find_python(version)
        if python:
            return python
    pytest.skip(f"no Python older than 3.9 ({', '.join(OLD_PYTHONS)}) on this machine")


def good_python() -> str:
    for version in ("3.12", "3.11", "3.10", "3.9", "3.13"):
        python = find_python(version)
        if python:
            return python
    return sys.executable


def fake_path(tmp_path: Path, **pythons: str) -> Path:
    """A PATH directory with bash and the given names (python3, python3.12, ...) only."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    (folder / "bash").symlink_to(BASH)
    for name, target in pythons.items():
        (folder / name.replace("_", ".")).symlink_to(target)
    return folder


def without_venv(tmp_path: Path, python: str) -> str:
    """A wrapper of `python` where `import ensurepip` and `import venv` fail (Debian's python3
    without the python3-venv package has no ensurepip)."""
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    for module in ("ensurepip", "venv"):
        (shim / f"{module}.py").write_text(f"raise ImportError('No module named {module}')\n")
    wrapper = tmp_path / "python-no-venv"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={shim} exec {python} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def run(bundle: Path, path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": str(path), "HOME": str(bundle.parent), "LANG": "C.UTF-8"}
    return subprocess.run(
        [BASH, "run.sh", *args],
        cwd=bundle,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_stopped(bundle: Path, done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0, done.stderr
    assert "cortex-agent: cannot start:" in done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    assert "starting node" not in done.stdout + done.stderr
    assert not (bundle / ".venv").exists()
    assert not (bundle / ".cortex-agent").exists()
    assert not (bundle / "workspace").exists()


def test_a_python_too_old_stops_run_sh_with_how_to_get_a_newer_one(bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = fake_path(tmp_path, python3=old_python())
    done = run(bundle, path)
    assert_stopped(bundle, done, "needs Python 3.9 or newer", "apt-get install", "dnf install")
    assert "PYTHON=" in done.stderr


def test_python_set_to_an_old_one_stops_too(bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = fake_path(tmp_path, python3=good_python())
    done = run(bundle, path, PYTHON=old_python())
    assert_stopped(bundle, done, "needs Python 3.9 or newer")


def test_python_set_to_nothing_that_runs_stops(bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = fake_path(tmp_path, python3=good_python())
    done = run(bundle, path, PYTHON="python3.99")
    assert_stopped(bundle, done, "PYTHON=python3.99")


def test_no_python_at_all_stops(bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = run(bundle, fake_path(tmp_path))
    assert_stopped(bundle, done, "no python3", "apt-get install python3 python3-venv")


def test_a_python_without_venv_stops_with_the_package_to_install(bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    python = good_python()
    path = fake_path(tmp_path, python3=without_venv(tmp_path, python))
    done = run(bundle, path)
    assert_stopped(bundle, done, "no venv module with ensurepip", "-venv", "dnf install")


def test_the_newest_suitable_python_on_the_path_is_picked(bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """python3 is too old, python3.N lacks venv, python3.M is fine: python3.M is used."""
    good = good_python()
    path = fake_path(
        tmp_path, python3=old_python(), python3_30=without_venv(tmp_path, good), python3_12=good
    )
    done = run(bundle, path, "--check")
    assert done.returncode == 0, done.stderr
    assert f"ok: would use {path / 'python3.12'}" in done.stderr
    assert not (bundle / ".venv").exists()


def test_too_little_disk_stops(bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = fake_path(tmp_path, python3=good_python())
    done = run(bundle, path, CORTEX_AGENT_MIN_FREE_MB=str(2**40))
    assert_stopped(bundle, done, "MB free", "needs about")


def test_bootstrap_py_itself_says_it_is_too_old(bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`python3 bootstrap.py` with an old python3 (the script runs far enough to say so)."""
    old = old_python()
    done = subprocess.run(
        [old, "bootstrap.py"],
        cwd=bundle,
        env={"PATH": str(fake_path(tmp_path, python3=old)), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_stopped(bundle, done, "needs Python 3.9 or newer")
    assert os.path.exists(bundle / "run.sh")
