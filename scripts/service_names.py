"""Which public service functions no test names.

A service is a public top-level function in an app's ``services`` module or
package. A test "names" it when a test module imports it or refers to it as
``name`` or ``module.name`` in code (comments and strings do not count), so
the list shows services that are only reached through their API, if at all.

    python scripts/service_names.py            # every app
    python scripts/service_names.py mesh agents
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Every app of the project: a top-level package with an `apps.py` (new apps are seen at once).
APPS = tuple(sorted(path.parent.name for path in ROOT.glob("*/apps.py")))


def service_modules(app: str, root: Path = ROOT) -> Iterator[Path]:
    """The files that make up one app's service layer."""
    single = root / app / "services.py"
    if single.exists():
        yield single
    package = root / app / "services"
    if package.is_dir():
        yield from sorted(package.rglob("*.py"))


def public_services(path: Path) -> list[str]:
    """Public top-level functions defined in one module."""
    tree = ast.parse(path.read_text(), str(path))
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    return [n.name for n in tree.body if isinstance(n, functions) and not n.name.startswith("_")]


def test_files(root: Path = ROOT) -> Iterator[Path]:
    """Test modules, the shared test packages and the root conftest."""
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if parts[0] in {".venv", "node_modules", "var"} or "node_modules" in parts:
            continue
        if "tests" in parts[:-1] or path.name.startswith("test_") or path.name == "conftest.py":
            yield path


def names_in_tests(root: Path = ROOT) -> set[str]:
    """Every identifier that test code uses, imports or reads as an attribute."""
    seen: set[str] = set()
    for path in test_files(root):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Name):
                seen.add(node.id)
            elif isinstance(node, ast.Attribute):
                seen.add(node.attr)
            elif isinstance(node, ast.ImportFrom):
                seen.update(alias.name for alias in node.names)
    return seen


def unnamed(apps: tuple[str, ...] = APPS, root: Path = ROOT) -> dict[str, list[str]]:
    """``{"app/services/x.py": [function, ...]}`` for services no test names."""
    seen = names_in_tests(root)
    missing: dict[str, list[str]] = {}
    for app in apps:
        for module in service_modules(app, root):
            names = [name for name in public_services(module) if name not in seen]
            if names:
                missing[str(module.relative_to(root))] = names
    return missing


def main(argv: list[str]) -> int:
    apps = tuple(argv) or APPS
    missing = unnamed(apps)
    total = sum(len(public_services(m)) for app in apps for m in service_modules(app))
    count = sum(len(names) for names in missing.values())
    for module, names in missing.items():
        print(f"{module}: {', '.join(names)}")
    print(f"{count} of {total} public services are named by no test")
    return 1 if count else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
