"""Run test modules again on the test PostgreSQL server, in a child pytest.

The suite runs on SQLite; parity tests of hand-written SQL must hold on PostgreSQL too. The child
gets a database of its own (pytest-django creates `test_<name>` from DATABASE_URL and drops it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Set in the child, so that its own PostgreSQL rerun test does not recurse.
CHILD_FLAG = "CORTEX_TEST_PG_CHILD"


def in_child() -> bool:
    return os.environ.get(CHILD_FLAG) == "1"


def rerun_on_postgresql(postgres_url: str, *paths: str) -> None:
    """Run `paths` under pytest against PostgreSQL; fails with the child's output tail."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_URL")}
    env.update(
        {
            CHILD_FLAG: "1",
            "DATABASE_URL": f"{postgres_url}/cortex_parity_{uuid.uuid4().hex[:10]}",
            "DJANGO_SETTINGS_MODULE": "cortex.test_settings",
        }
    )
    done = subprocess.run(  # noqa: S603  # our own interpreter and test paths
        [sys.executable, "-m", "pytest", "--no-cov", "--create-db", "-p", "no:randomly"]
        + [*paths, "-m", "not postgres"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert " passed" in done.stdout, done.stdout[-2000:]
