"""The error-code catalogue (`cortex.error_codes`) holds every code the source raises, and no more.

Codes are found the way a reader would: every `CortexError` subclass of every project module
(imported), and, read from the source, codes given inline (`errors.NotFound(..., code="x")`),
error bodies written by hand (`error_body("x", ...)`, `{"code": "x", "message": ...}`), gRPC
trailing metadata, DRF's mapped codes, and the codes a node's files action reports.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from cortex import errors
from cortex.api.exceptions import _DRF_CODES, status_for
from cortex.error_codes import CATALOGUE, openapi_extension, render_markdown

ROOT = Path(settings.BASE_DIR)
PUBLISHED = ROOT / "docs" / "error-codes-published.txt"
DOCS = ROOT / "docs" / "errors.md"
SKIPPED_PARTS = {"tests", "migrations", "agent", "node_modules", "static", "templates"}
BODY_CODE = re.compile(r'"code":\s*"([a-z][a-z0-9_]*)"')


def _project_apps() -> list[Path]:
    """The directories of the project's own apps (third-party apps live outside the repo)."""
    found = []
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(ROOT) and ".venv" not in path.parts:
            found.append(path)
    return sorted(found)


def _modules() -> Iterator[str]:
    for path in _project_apps():
        package = path.name
        yield package
        for info in pkgutil.walk_packages([str(path)], prefix=f"{package}."):
            if SKIPPED_PARTS.isdisjoint(info.name.split(".")) and info.name != "cortex.asgi":
                yield info.name


def _sources() -> Iterator[Path]:
    for path in _project_apps():
        for file in sorted(path.rglob("*.py")):
            if SKIPPED_PARTS.isdisjoint(file.relative_to(ROOT).parts):
                yield file


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _error_classes() -> dict[str, list[type[errors.CortexError]]]:
    for name in _modules():
        importlib.import_module(name)
    by_name: dict[str, list[type[errors.CortexError]]] = {}
    for cls in [errors.CortexError, *_subclasses(errors.CortexError)]:
        if SKIPPED_PARTS.isdisjoint(cls.__module__.split(".")):
            by_name.setdefault(cls.__name__, []).append(cls)
    return by_name


def _status(cls: type[errors.CortexError]) -> int:
    return status_for(cls.__new__(cls))


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _const(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def raised_codes() -> dict[str, set[int | None]]:
    """Every code the source can answer with -> the HTTP statuses it is raised with."""
    classes = _error_classes()
    found: dict[str, set[int | None]] = {}
    for group in classes.values():
        for cls in group:
            found.setdefault(cls.code, set()).add(_status(cls))
    for code in _DRF_CODES.values():
        found.setdefault(code, set())
    for file in _sources():
        tree = ast.parse(file.read_text(), filename=str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _call_name(node)
                inline = next((_const(k.value) for k in node.keywords if k.arg == "code"), None)
                if inline and name in classes:
                    found.setdefault(inline, set()).update(_status(c) for c in classes[name])
                elif name in {"error_body"} and node.args and _const(node.args[0]):
                    found.setdefault(_const(node.args[0]) or "", set())
                elif name == "abort_code" and len(node.args) >= 4 and _const(node.args[3]):
                    found.setdefault(_const(node.args[3]) or "", set())
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
                key, value = node.elts
                if isinstance(key, ast.Name) and key.id == "ERROR_CODE_KEY" and _const(value):
                    found.setdefault(_const(value) or "", set())
            elif isinstance(node, ast.Dict):
                keys = [_const(k) for k in node.keys]
                if "code" in keys and "message" in keys:
                    found_code = _const(node.values[keys.index("code")])
                    if found_code:
                        found.setdefault(found_code, set())
            elif isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
                text = (
                    node.value.decode(errors="replace")
                    if isinstance(node.value, bytes)
                    else node.value
                )
                if text.lstrip().startswith("{") and '"error"' in text:
                    for code in BODY_CODE.findall(text):
                        found.setdefault(code, set())
    for code in node_files_codes():
        found.setdefault(code, set())  # answered with files_failed's status (or their own)
    return found


def node_files_codes() -> set[str]:
    """Codes a node's files action reports; the workspace API passes them on (files_failed)."""
    codes: set[str] = set()
    agent = ROOT / "mesh" / "agent"
    for file in [
        agent / "workspace.py",
        agent / "skills" / "files.py",
        agent / "skills" / "push.py",
    ]:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Call) and _call_name(node).endswith("Error"):
                first = _const(node.args[0]) if node.args else None
                if first and re.fullmatch(r"[a-z][a-z0-9_]*", first):
                    codes.add(first)
                codes.update(v for k in node.keywords if k.arg == "code" and (v := _const(k.value)))
            elif (
                isinstance(node, ast.Assign)
                and [ast.unparse(t) for t in node.targets] == ["code"]
                and (value := _const(node.value))
            ):
                codes.add(value)
    return codes


@pytest.fixture(scope="module")
def raised() -> dict[str, set[int | None]]:
    return raised_codes()


def test_every_raised_code_is_catalogued_with_its_status(raised) -> None:
    missing = sorted(set(raised) - set(CATALOGUE))
    assert not missing, f"add these codes to cortex/error_codes.py: {missing}"
    node_only = node_files_codes()
    wrong = {
        code: sorted(statuses, key=str)
        for code, statuses in raised.items()
        if code not in node_only and statuses and statuses != {CATALOGUE[code].status}
    }
    assert not wrong, f"catalogued status differs from the raised one: {wrong}"


def test_every_catalogued_code_is_still_raised(raised) -> None:
    gone = sorted(set(CATALOGUE) - set(raised))
    assert not gone, f"catalogued but raised nowhere (codes are API: keep them): {gone}"


def test_no_published_code_disappears() -> None:
    published = [line.strip() for line in PUBLISHED.read_text().splitlines()]
    published = [line for line in published if line and not line.startswith("#")]
    assert published == sorted(set(published)), "keep the published list sorted and unique"
    gone = sorted(set(published) - set(CATALOGUE))
    assert not gone, f"published codes missing from the catalogue: {gone}"
    unpublished = sorted(set(CATALOGUE) - set(published))
    assert not unpublished, f"publish new codes in {PUBLISHED.name}: {unpublished}"


def test_catalogue_entries_are_well_formed() -> None:
    for code, entry in CATALOGUE.items():
        assert entry.code == code
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code), code
        assert entry.status is None or 400 <= entry.status <= 599, code
        assert entry.meaning and "\n" not in entry.meaning and "|" not in entry.meaning, code


def test_docs_page_is_the_catalogue_rendered() -> None:
    assert DOCS.read_text() == render_markdown(), (
        "docs/errors.md is stale: python -m cortex.error_codes > docs/errors.md"
    )


def test_openapi_schema_lists_the_catalogue() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["x-error-codes"] == openapi_extension()
    assert [e["code"] for e in schema["x-error-codes"]] == sorted(CATALOGUE)
    assert "docs/errors.md" in schema["info"]["description"]
