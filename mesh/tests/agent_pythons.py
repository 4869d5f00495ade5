"""The Pythons a node may run the agent on, as this machine has them, and venvs of the agent.

Interpreters are found under pyenv (~/.pyenv/versions/X.Y.*) and on the PATH (pythonX.Y); a
supported version this machine lacks is skipped with a reason, never faked. Wheels are cached in
var/pip-cache so that a second run downloads nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENT_DIR = ROOT / "mesh" / "agent"
REQUIREMENTS = AGENT_DIR / "requirements.txt"
PIP_CACHE = ROOT / "var" / "pip-cache"
SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")


def _version_of(python: str) -> str | None:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@cache
def find_python(version: str) -> str | None:
    """A working CPython `version` (e.g. "3.9") on this machine, or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(pyenv.glob(f"{version}.*/bin/python3"), reverse=True)
    candidates = [str(p) for p in found]
    for name in (f"python{version}", f"/usr/bin/python{version}"):
        path = shutil.which(name)
        if path:
            candidates.append(path)
    for python in candidates:
        if _version_of(python) == version:
            return python
    return None


def installed() -> list[str]:
    return [v for v in SUPPORTED if find_python(v)]


def python_or_skip(version: str) -> str:
    python = find_python(version)
    if python is None:
        pytest.skip(f"CPython {version} is not installed on this machine (pyenv or PATH)")
    return python


def oldest() -> str:
    return (installed() or [SUPPORTED[0]])[0]


def newest() -> str:
    return (installed() or [SUPPORTED[-1]])[-1]


def floors(requirements: Path = REQUIREMENTS) -> list[str]:
    """`name==floor` for every `name>=floor,...` line: the oldest versions the ranges admit."""
    from packaging.requirements import Requirement

    pins = []
    for line in requirements.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line)
        (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
        pins.append(f"{requirement.name}=={floor}")
    return pins


def pip_env() -> dict[str, str]:
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    env.update(PIP_CACHE_DIR=str(PIP_CACHE), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    return env


def make_venv(base: str, target: Path, *requirements: str) -> Path:
    """A venv of `base` at `target` with `requirements` (pip arguments) installed; its python."""
    subprocess.run([base, "-m", "venv", str(target)], check=True, timeout=180)
    python = target / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *requirements],
        env=pip_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"pip on {base} could not install {requirements}:\n{done.stderr}"
    return python
