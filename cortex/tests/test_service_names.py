"""Every public service is named by at least one test (issue 20).

`scripts/service_names.py` reads services and tests as Python, so a name in a comment or a
string does not count; a function used only inside its own module should be private."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "service_names", ROOT / "scripts" / "service_names.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_service_is_named_by_a_test() -> None:
    missing = _checker().unnamed()
    listing = "\n".join(f"{module}: {', '.join(names)}" for module, names in missing.items())
    assert missing == {}, f"services no test names:\n{listing}"


def test_a_name_in_a_comment_or_string_does_not_count(tmp_path: Path) -> None:
    services = tmp_path / "app" / "services"
    services.mkdir(parents=True)
    (services / "things.py").write_text(
        "def thing_create(): ...\n"
        "async def thing_delete(): ...\n"
        "def thing_move(): ...\n"
        "def _helper(): ...\n"
    )
    tests = tmp_path / "app" / "tests"
    tests.mkdir()
    (tests / "test_things.py").write_text(
        "from app.services.things import thing_create\n"
        "# thing_move is only mentioned here\n"
        "def test_x(services):\n"
        "    thing_create()\n"
        "    services.thing_delete()\n"
        "    assert 'thing_move'\n"
    )
    assert _checker().unnamed(("app",), tmp_path) == {"app/services/things.py": ["thing_move"]}
