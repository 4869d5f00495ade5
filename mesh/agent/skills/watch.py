"""The lead node's side of a `node` workspace: watch a folder and report what changed.

A `files` `watch` task is a long poll. The hub sends what it believes the folder holds
(`known`: path -> sha256; `executable`: the paths with the executable bit, which is synced); the
agent scans the folder (polling stat scans, every `POLL_S`, hashes cached by size and mtime),
waits until a change has been quiet for `DEBOUNCE_S`, and returns one batch: changed files with
their bytes (zlib, base64) and mode up to a byte budget, and deleted paths. A file larger than
the whole budget comes as a `fetch` (path, size, mode, mtime, sha256, no bytes): the hub brings
it in with ranged reads. The hub stores the
batch and sends the next watch, so nothing is kept only in this process: a restarted agent
simply answers the next watch.

Symlinks are never followed (nor reported), devices, sockets and pipes are skipped, and so are
pushes still being written, `.git/`, and what the `.gitignore` / `.cortexignore` files exclude
(git's rules, nested files included: `mesh.agent.ignore`, the module the hub decides with too).
Files the hub itself just pushed here are not echoed back (`note_pushed`).
Pure standard library, Python 3.9+.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat as stat_module
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from ..ignore import IGNORE_FILES, MAX_IGNORE_FILE_BYTES, IgnoreRules

POLL_S = 0.2
DEBOUNCE_S = 0.15
MAX_WAIT_S = 60.0
#: Raw bytes of file content per batch (the result travels in one 4 MiB message).
BATCH_BYTES = 2 * 1024 * 1024

# Hash cache per watched folder: rel -> (size, mtime_ns, sha256). Only a cache: losing it
# costs a rehash, never a wrong answer (size and mtime_ns must both match).
_CACHE: dict[str, dict[str, tuple[int, int, str]]] = {}
# Files the hub pushed into a watched folder: real path -> sha256 (the LOCK/UNLOCK of the
# original): a watch that sees exactly those bytes there does not report them back.
_PUSHED: dict[str, str] = {}
# Ignore files read by a watch: real path -> ((inode, size, mtime_ns), text).
_IGNORE_CACHE: dict[str, tuple[tuple[int, int, int], str]] = {}
_LOCK = threading.Lock()


def note_pushed(path: Path, sha256: str, *, real: bool = False) -> None:
    """A push has just renamed `sha256`'s bytes into `path` (called by the push receiver);
    `real` when the caller has resolved `path` already (a bundle: no second realpath)."""
    with _LOCK:
        _PUSHED[str(path) if real else os.path.realpath(path)] = sha256
        if len(_PUSHED) > 100000:
            _PUSHED.clear()


def _ignore_texts(folder: Path, rel_dir: str, entries: list[os.DirEntry[str]]) -> list[str]:
    """The texts of the ignore files among one folder's entries; an unchanged file (same inode,
    size and mtime) is not read again (a watch rescans every POLL_S)."""
    found = {e.name: e for e in entries if e.name in IGNORE_FILES}
    texts: list[str] = []
    for name in IGNORE_FILES:
        entry = found.get(name)
        if entry is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat_module.S_ISREG(st.st_mode) or st.st_size > MAX_IGNORE_FILE_BYTES:
            continue  # a symlink is never read (it could point out of the root)
        path = str(folder / rel_dir / name) if rel_dir else str(folder / name)
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with _LOCK:
            cached = _IGNORE_CACHE.get(path)
        if cached is None or cached[0] != key:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as fh:
                    text = fh.read(MAX_IGNORE_FILE_BYTES).decode("utf-8", errors="replace")
            except OSError:
                continue
            cached = (key, text)
            with _LOCK:
                if len(_IGNORE_CACHE) > 10000:
                    _IGNORE_CACHE.clear()
                _IGNORE_CACHE[path] = cached
        texts.append(cached[1])
    return texts


def _hash(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat_module.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        while True:
            data = fh.read(1024 * 1024)
            if not data:
                break
            digest.update(data)
    return digest.hexdigest()


def scan(folder: Path) -> dict[str, tuple[int, int, int]]:
    """rel -> (size, mtime_ns, mode) of every regular file that is watched."""
    texts: dict[str, list[str]] = {}
    # A folder's ignore files are read when the walk lists it, before any of its entries is
    # judged; excluded folders are never entered (git's rule: nothing inside comes back).
    rules = IgnoreRules(lambda rel_dir: texts.get(rel_dir, []))
    found: dict[str, tuple[int, int, int]] = {}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = list(os.scandir(folder / rel_dir if rel_dir else folder))
        except OSError:
            continue
        texts[rel_dir] = _ignore_texts(folder, rel_dir, entries)
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat_module.S_ISDIR(st.st_mode):
                if not rules.excluded(rel, True):
                    stack.append(rel)
            elif stat_module.S_ISREG(st.st_mode):
                if entry.name.startswith(".") and ".push-" in entry.name:
                    continue  # a push still being written
                if not rules.excluded(rel, False):
                    found[rel] = (st.st_size, st.st_mtime_ns, stat_module.S_IMODE(st.st_mode))
    return found


def _hashes(folder: Path, stats: dict[str, tuple[int, int, int]]) -> dict[str, str]:
    key = str(folder)
    with _LOCK:
        cache = dict(_CACHE.get(key, {}))
    result: dict[str, str] = {}
    fresh: dict[str, tuple[int, int, str]] = {}
    for rel, (size, mtime_ns, _mode) in stats.items():
        hit = cache.get(rel)
        if hit and hit[0] == size and hit[1] == mtime_ns:
            digest: str | None = hit[2]
        else:
            digest = _hash(folder / rel)
        if digest is not None:
            result[rel] = digest
            fresh[rel] = (size, mtime_ns, digest)
    with _LOCK:
        _CACHE[key] = fresh
    return result


def _changes(
    folder: Path, known: dict[str, str], executable: set[str] | None = None
) -> tuple[dict[str, tuple[int, int, int]], list[str], list[str], dict[str, str]]:
    """Changed and deleted paths against `known`; with `executable` (the hub's executable
    files; an older hub sends none) a file whose executable bit differs has changed too."""
    stats = scan(folder)
    hashes = _hashes(folder, stats)
    with _LOCK:
        pushed = dict(_PUSHED)
    changed = []
    for rel, digest in sorted(hashes.items()):
        same_mode = executable is None or bool(stats[rel][2] & 0o100) == (rel in executable)
        if known.get(rel) == digest and same_mode:
            continue
        if pushed.get(os.path.realpath(folder / rel)) == digest and rel in known:
            continue  # our own push, the hub knows (it sent it)
        changed.append(rel)
    deleted = sorted(rel for rel in known if rel not in hashes)
    return stats, changed, deleted, hashes


def watch(
    folder: Path, payload: dict[str, Any], cancel: threading.Event | None = None
) -> dict[str, Any]:
    """Wait up to payload["wait"] seconds for the folder to differ from payload["known"];
    return {"changes": [...], "more": bool}. The folder is created if missing."""
    known_raw = payload.get("known") or {}
    known = {str(k): str(v) for k, v in known_raw.items()} if isinstance(known_raw, dict) else {}
    exec_raw = payload.get("executable")
    executable = {str(p) for p in exec_raw} if isinstance(exec_raw, list) else None
    wait = payload.get("wait", 25)
    wait = min(float(wait), MAX_WAIT_S) if isinstance(wait, (int, float)) else 25.0
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    deadline = time.monotonic() + wait
    stats, changed, deleted, hashes = _changes(folder, known, executable)
    while not changed and not deleted and time.monotonic() < deadline:
        if cancel is not None and cancel.is_set():
            break
        time.sleep(POLL_S)
        stats, changed, deleted, hashes = _changes(folder, known, executable)
    if changed or deleted:  # debounce: wait until a burst has settled
        while True:
            time.sleep(DEBOUNCE_S)
            again, changed, deleted, hashes = _changes(folder, known, executable)
            settled, stats = again == stats, again  # the batch uses this round's stats
            if settled or time.monotonic() > deadline + 5:
                break
    return _batch(folder, stats, changed, deleted, hashes)


def _batch(
    folder: Path,
    stats: dict[str, tuple[int, int, int]],
    changed: list[str],
    deleted: list[str],
    hashes: dict[str, str],
) -> dict[str, Any]:
    changes: list[dict[str, Any]] = [{"op": "delete", "path": rel} for rel in deleted]
    budget, more = BATCH_BYTES, False
    for rel in changed:
        size, mtime_ns, mode = stats[rel]
        if size > BATCH_BYTES:
            # Too large for one answer: the hub fetches it in ranges and checks this sha256.
            changes.append(
                {
                    "op": "fetch",
                    "path": rel,
                    "size": size,
                    "mode": mode,
                    "mtime": mtime_ns / 1e9,
                    "mtime_ns": mtime_ns,
                    "sha256": hashes[rel],
                }
            )
            continue
        if size > budget and budget < BATCH_BYTES:
            more = True  # the next watch picks it up
            continue
        try:
            fd = os.open(folder / rel, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                data = fh.read(BATCH_BYTES + 1)
        except OSError:
            continue
        if len(data) > BATCH_BYTES:
            continue
        budget -= len(data)
        changes.append(
            {
                "op": "put",
                "path": rel,
                "size": len(data),
                "mode": mode,
                "mtime": mtime_ns / 1e9,
                "sha256": hashlib.sha256(data).hexdigest(),
                "data": base64.b64encode(zlib.compress(data, 1)).decode("ascii"),
            }
        )
    return {"changes": changes, "more": more}
