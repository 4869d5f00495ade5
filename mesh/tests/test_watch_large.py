"""The lead's watcher and files larger than one answer: reported with their sha256, size and
mode (no bytes) so the hub fetches them in ranged reads, instead of being skipped."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mesh.agent.skills.watch import BATCH_BYTES, watch


def test_a_file_over_the_batch_budget_is_reported_for_fetching(tmp_path: Path) -> None:
    big = os.urandom(BATCH_BYTES + 1)
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "big.bin").chmod(0o755)
    (tmp_path / "small.txt").write_text("s")
    result = watch(tmp_path, {"known": {}, "wait": 0})
    changes = {c["path"]: c for c in result["changes"]}
    st = (tmp_path / "big.bin").stat()
    assert changes["big.bin"] == {
        "op": "fetch",
        "path": "big.bin",
        "size": BATCH_BYTES + 1,
        "mode": 0o755,
        "mtime": st.st_mtime_ns / 1e9,
        "mtime_ns": st.st_mtime_ns,
        "sha256": hashlib.sha256(big).hexdigest(),
    }
    assert changes["small.txt"]["op"] == "put"  # the budget is not spent on the large one
    assert result["more"] is False
    # Once the hub knows it (in flight or mirrored), it is not reported again.
    known = {
        "big.bin": hashlib.sha256(big).hexdigest(),
        "small.txt": changes["small.txt"]["sha256"],
    }
    assert watch(tmp_path, {"known": known, "executable": ["big.bin"], "wait": 0})["changes"] == []
