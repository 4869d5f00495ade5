"""The agent runs on every Python a node may have: CPython 3.9 to 3.13.

Fast: every agent source parses with the 3.9 grammar and uses no 3.10+/3.11+ runtime feature the
grammar does not catch (`datetime.UTC`, `X | Y` in isinstance, `zip(strict=)`, ...).
Slow: a venv per installed Python where `pip install -r mesh/agent/requirements.txt` resolves and
the agent imports and starts; the agent's unit tests under the oldest and the newest Python (the
oldest also with the oldest versions the requirement ranges admit); a bundle started with
`run.sh` under the oldest (floors) and the newest Python joins a live hub and reports its Python.
"""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from mesh.tests.agent_pythons import (
    AGENT_DIR,
    REQUIREMENTS,
    ROOT,
    SUPPORTED,
    floors,
    make_venv,
    newest,
    oldest,
    pip_env,
    python_or_skip,
)

OLDEST_GRAMMAR = (3, 9)
SOURCES = sorted(p for p in AGENT_DIR.rglob("*.py") if "__pycache__" not in p.parts)

# Names that exist only from Python 3.10 or 3.11 on.
NEW_IMPORTS = {
    "datetime": {"UTC"},
    "enum": {"StrEnum", "verify", "member", "nonmember"},
    "typing": {
        "Self",
        "TypeAlias",
        "ParamSpec",
        "Concatenate",
        "TypeGuard",
        "LiteralString",
        "Never",
        "assert_never",
        "reveal_type",
        "Required",
        "NotRequired",
        "Unpack",
        "TypeVarTuple",
        "dataclass_transform",
        "override",
    },
    "itertools": {"pairwise", "batched"},
    "contextlib": {"aclosing", "chdir"},
}
NEW_MODULES = {"tomllib"}
NEW_ATTRIBUTES = {
    ("datetime", "UTC"),
    ("asyncio", "timeout"),
    ("asyncio", "timeout_at"),
    ("asyncio", "TaskGroup"),
    ("asyncio", "Runner"),
    ("itertools", "pairwise"),
    ("contextlib", "aclosing"),
    ("platform", "freedesktop_os_release"),
    ("sys", "orig_argv"),
    ("typing", "Self"),
    ("enum", "StrEnum"),
}
NEW_BUILTINS = {"aiter", "anext", "ExceptionGroup", "BaseExceptionGroup", "EncodingWarning"}
NEW_KEYWORDS = {"zip": {"strict"}, "dataclass": {"slots", "kw_only", "match_args"}}


def _has_bitor(node: ast.AST) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(node))


def newer_python_features(source: str, filename: str = "<agent>") -> list[str]:
    """What in `source` needs a Python newer than 3.9 at run time, as 'line: why' strings."""
    tree = ast.parse(source, filename, feature_version=OLDEST_GRAMMAR)
    found: list[str] = []
    future = any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and "annotations" in {a.name for a in n.names}
        for n in tree.body
    )
    calls_wait_for = "wait_for(" in source
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.ImportFrom) and node.module in NEW_IMPORTS:
            for alias in node.names:
                if alias.name in NEW_IMPORTS[node.module]:
                    found.append(f"{line}: {node.module}.{alias.name} needs 3.10+")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found += [f"{line}: module {n} needs 3.11" for n in names if n in NEW_MODULES]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in NEW_ATTRIBUTES
        ):
            found.append(f"{line}: {node.value.id}.{node.attr} needs 3.10+")
        if isinstance(node, ast.Name) and node.id in NEW_BUILTINS:
            found.append(f"{line}: builtin {node.id} needs 3.10+")
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            for keyword in node.keywords:
                if keyword.arg in NEW_KEYWORDS.get(name, set()):
                    found.append(f"{line}: {name}({keyword.arg}=) needs 3.10+")
            union = len(node.args) == 2 and _has_bitor(node.args[1])
            if name in ("isinstance", "issubclass") and union:
                found.append(f"{line}: {name}() with X | Y needs 3.10; use a tuple")
        # An alias `A = B | None` is evaluated when the line runs.
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.BinOp)
            and _is_type_union(node.value)
            and _names_a_type(node.value)
        ):
            found.append(f"{line}: type alias with X | Y needs 3.10")
        if not future and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotations = [a.annotation for a in node.args.args + node.args.kwonlyargs]
            if any(a is not None and _has_bitor(a) for a in [*annotations, node.returns]):
                found.append(
                    f"{line}: X | Y annotation without `from __future__ import annotations`"
                )
        if not future and isinstance(node, ast.AnnAssign) and _has_bitor(node.annotation):
            found.append(f"{line}: X | Y annotation without `from __future__ import annotations`")
        if isinstance(node, ast.ExceptHandler) and calls_wait_for and node.type is not None:
            names = [n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)]
            if "TimeoutError" in names and not _mentions_asyncio_timeout(node.type):
                found.append(
                    f"{line}: asyncio.wait_for raises asyncio.TimeoutError, which is not "
                    "TimeoutError before 3.11: catch compat.TIMEOUTS"
                )
    return found


def _is_type_union(node: ast.AST) -> bool:
    """`A | B` made only of names, attributes, subscripts and None (a runtime type alias)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_type_union(node.left) and _is_type_union(node.right)
    if isinstance(node, ast.Constant):
        return node.value is None
    return isinstance(node, (ast.Name, ast.Attribute, ast.Subscript))


BUILTIN_TYPES = {"int", "str", "float", "bytes", "bool", "list", "dict", "tuple", "set", "object"}


def _names_a_type(node: ast.AST) -> bool:
    """None or a builtin type in it (`os.O_RDONLY | os.O_CREAT`, `d1 | d2` are no types)."""
    return any(
        (isinstance(n, ast.Constant) and n.value is None)
        or (isinstance(n, ast.Name) and n.id in BUILTIN_TYPES)
        for n in ast.walk(node)
    )


def _mentions_asyncio_timeout(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "TimeoutError" for n in ast.walk(node))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(AGENT_DIR).as_posix())
def test_agent_source_runs_on_the_oldest_supported_python(path: Path) -> None:
    assert newer_python_features(path.read_text(), str(path)) == []


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("from datetime import UTC\n", "datetime.UTC"),
        ("import datetime\nx = datetime.UTC\n", "datetime.UTC"),
        ("isinstance(1, int | str)\n", "isinstance() with X | Y"),
        ("list(zip([], [], strict=True))\n", "zip(strict=)"),
        ("from dataclasses import dataclass\n@dataclass(slots=True)\nclass A: pass\n", "slots"),
        ("from enum import StrEnum\n", "StrEnum"),
        ("import tomllib\n", "tomllib"),
        ("import asyncio\nasync def f():\n    async with asyncio.timeout(1): pass\n", "timeout"),
        ("import asyncio\nasync def f():\n    async with asyncio.TaskGroup(): pass\n", "TaskGroup"),
        ("from typing import Self\n", "Self"),
        ("def f(x: int | None) -> None: pass\n", "without `from __future__"),
        ("Alias = int | None\n", "type alias"),
        (
            "import asyncio\nasync def f(e):\n    try:\n        await asyncio.wait_for(e, 1)\n"
            "    except TimeoutError:\n        pass\n",
            "asyncio.TimeoutError",
        ),
        ("match 1:\n    case 1: pass\n", "SyntaxError"),
        ("try:\n    pass\nexcept* ValueError:\n    pass\n", "SyntaxError"),
    ],
)
def test_the_guard_sees_newer_python_features(source: str, why: str) -> None:
    """Each sample of the class is caught (the grammar ones as a SyntaxError from ast.parse)."""
    try:
        found = newer_python_features(source)
    except SyntaxError:
        found = ["SyntaxError"]
    assert found and why in " ".join(found), found


def test_compatible_spellings_pass_the_guard() -> None:
    source = (
        "from __future__ import annotations\nimport asyncio\nfrom datetime import timezone\n"
        "from .compat import TIMEOUTS\n"
        "def f(x: int | None) -> str | None:\n    return isinstance(x, (int, str))\n"
        "async def g(e):\n    try:\n        await asyncio.wait_for(e, 1)\n"
        "    except TIMEOUTS:\n        pass\n    except (TimeoutError, asyncio.TimeoutError):\n"
        "        pass\n"
    )
    assert newer_python_features(source) == []


# ------------------------------------------------------------------ real interpreters (slow)
AGENT_MODULES = sorted(
    "mesh.agent." + ".".join(p.relative_to(AGENT_DIR).with_suffix("").parts)
    for p in SOURCES
    if p.name != "__main__.py"
)
UNIT_TESTS = ["mesh/tests/test_agent_units.py", "mesh/tests/test_sandbox.py"]


@pytest.fixture(scope="session")
def agent_venv(tmp_path_factory):  # type: ignore[no-untyped-def]
    """agent_venv(version, pins=False): a venv of that Python with the agent's requirements
    (and pytest), made once per session; `pins` installs the floors of the ranges instead."""
    made: dict[tuple[str, bool], Path] = {}

    def get(version: str, pins: bool = False) -> Path:
        key = (version, pins)
        if key not in made:
            base = python_or_skip(version)
            target = tmp_path_factory.mktemp(f"agent-py{version}{'-floors' if pins else ''}")
            requirements = ["-r", str(REQUIREMENTS), "pytest", "pytest-asyncio"]
            if pins:
                constraints = target.parent / f"floors-{version}.txt"
                constraints.write_text("\n".join(floors()) + "\n")
                requirements += ["-c", str(constraints)]
            made[key] = make_venv(base, target / "venv", *requirements)
        return made[key]

    return get


def _run(python: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args],
        cwd=ROOT,
        env=pip_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
@pytest.mark.parametrize("version", SUPPORTED)
def test_requirements_resolve_and_the_agent_imports_and_starts(agent_venv, version: str) -> None:
    python = agent_venv(version)
    code = (
        "import importlib, sys\n"
        f"for name in {AGENT_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "assert 'django' not in sys.modules, 'the agent imported django'\n"
        "import grpc, google.protobuf\n"
        "print(sys.version_info[:2], grpc.__version__, google.protobuf.__version__)\n"
    )
    done = _run(python, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(tuple(int(p) for p in version.split(".")))), done.stdout
    started = _run(python, "-m", "mesh.agent", "--help")
    assert started.returncode == 0, started.stderr
    assert "--config" in started.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("which", "pins"),
    [("oldest", False), ("oldest", True), ("newest", False)],
    ids=["oldest-python", "oldest-python-oldest-deps", "newest-python"],
)
def test_agent_unit_tests_pass(agent_venv, tmp_path: Path, which: str, pins: bool) -> None:
    """The agent's own tests (no Django) under that Python, outside the hub's environment."""
    version = oldest() if which == "oldest" else newest()
    python = agent_venv(version, pins)
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\nasyncio_mode = auto\n")
    done = _run(
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--noconftest",
        "-c",
        str(ini),
        "--rootdir",
        str(ROOT),
        *UNIT_TESTS,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("which", "pins"), [("oldest", True), ("newest", False)], ids=["oldest-floors", "newest"]
)
def test_bundle_started_with_run_sh_joins_and_reports_its_python(
    live_hub, tmp_path: Path, which: str, pins: bool
) -> None:
    """`PYTHON=... bash run.sh` makes the venv and installs from the index (the pip cache is
    shared); the oldest Python gets the floors of the ranges (PIP_OPTIONS=--constraint)."""
    from cortex.testing import wait_until
    from mesh.tests.test_provisioning_e2e import Hub, stop

    version = oldest() if which == "oldest" else newest()
    base = python_or_skip(version)
    hub = Hub(live_hub)
    node_id = f"py-{version.replace('.', '')}"
    live_hub.manage("register_node", node_id)
    bundle = tmp_path / "bundle"
    live_hub.manage("provision_node", node_id, "--out", str(bundle))
    env = {**pip_env(), "PYTHON": base, "PYTHONUNBUFFERED": "1"}
    if pins:
        constraints = tmp_path / "floors.txt"
        constraints.write_text("\n".join(floors()) + "\n")
        env["PIP_OPTIONS"] = f"--constraint {constraints}"
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        ["bash", "run.sh"],
        cwd=bundle,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        node = wait_until(lambda: (n := hub.node(node_id))["status"] == "online" and n, timeout=180)
        full = ".".join(
            subprocess.run(
                [base, "-c", "import platform; print(platform.python_version())"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        )
        assert node["agent"]["python"] == f"CPython {full}", log.read_text()[-2000:]
        assert node["agent"]["version"]
        assert node["agent"]["os"]
        if pins:
            versions = subprocess.run(
                [
                    str(bundle / ".venv" / "bin" / "python"),
                    "-c",
                    "import grpc; print(grpc.__version__)",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            (pin,) = [Requirement(f) for f in floors() if f.startswith("grpcio==")]
            assert versions in pin.specifier, (versions, pin)  # the floor, not a newer one
        task = hub.task(hub.run(node_id, "echo hello"), wait=30)
        assert task["status"] == "succeeded", task
    finally:
        stop(proc)
    assert os.path.exists(bundle / ".venv" / "bin" / "python")


@pytest.mark.slow
def test_offline_bundle_installs_from_its_wheels_without_any_index(
    live_hub, tmp_path: Path
) -> None:
    """`provision_node --with-wheels --python-version X` for the oldest Python; run.sh installs
    with the package index pointed at a dead loopback port and no pip config: only ./wheels."""
    from cortex.testing import wait_until
    from mesh.tests.test_provisioning_e2e import Hub, stop

    version = oldest()
    base = python_or_skip(version)
    hub = Hub(live_hub)
    live_hub.env["PIP_CACHE_DIR"] = pip_env()["PIP_CACHE_DIR"]
    live_hub.manage("register_node", "offline-1")
    bundle = tmp_path / "bundle"
    printed = live_hub.manage(
        "provision_node", "offline-1", "--out", str(bundle), "--with-wheels",
        "--python-version", version, "--platform", "manylinux2014_x86_64",
    )  # fmt: skip
    assert "Wrote the bundle" in printed
    wheels = sorted(p.name for p in (bundle / "wheels").glob("*.whl"))
    tag = "cp" + version.replace(".", "")
    assert any(name.startswith("grpcio-") and f"-{tag}-" in name for name in wheels), wheels
    env = {
        k: v for k, v in pip_env().items() if not k.startswith("PIP_")
    }  # no cache, no find-links
    env.update(
        PYTHON=base,
        PYTHONUNBUFFERED="1",
        PIP_INDEX_URL="http://127.0.0.1:9/simple",
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
    )
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        ["bash", "run.sh"],
        cwd=bundle,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(lambda: hub.node("offline-1")["status"] == "online", timeout=120)
        assert "from ./wheels (offline)" in log.read_text()
    finally:
        stop(proc)
