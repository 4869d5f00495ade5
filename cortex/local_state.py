"""Private local state of an embedded install: `var/` (0700), its SQLite files and keys (0600).

Imported by `cortex.settings` before Django is configured, so it uses only the standard library
and `cryptography`. The SQLite database holds live session keys and encrypted provider keys: no
other local user may read it. An embedded install without CORTEX_SECRET_KEY / CORTEX_FIELD_KEYS
gets keys of its own, generated once into `var/` and reused; no key ships with the code.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

#: The development field key earlier versions shipped in the code. Public: it never encrypts.
#: An install upgraded from such a version keeps it as a decrypt-only fallback (second key)
#: so its stored secrets still open; `manage.py rotate_field_keys` re-encrypts them.
LEGACY_DEV_FIELD_KEY = "ZGV2ZWxvcG1lbnQtb25seS1maWVsZC1rZXktMDAwMDA="  # noqa: S105
LEGACY_DEV_SECRET_KEY = "cortex-development-only-insecure-key-never-used-in-production"  # noqa: S105

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing and make it 0700 when this user owns it."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    _tighten(path, PRIVATE_DIR_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    # A file another user owns (a shared DATABASE_URL path) is theirs to protect.
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)


def private_sqlite(path: Path) -> None:
    """Make a SQLite database file 0600 before SQLite opens it.

    SQLite creates `-wal`, `-shm` and journal files with the database file's own mode, so an
    empty 0600 file created here (SQLite accepts it as a new database) covers them too; files
    left by an older, laxer install are tightened.
    """
    if not path.parent.is_dir():
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
    for suffix in ("", "-wal", "-shm", "-journal"):
        _tighten(path.with_name(path.name + suffix), PRIVATE_FILE_MODE)


def install_secret(directory: Path, name: str, generate: Callable[[], str]) -> str:
    """The value in `directory/name`, generated once (0600) if missing; safe against a race.

    Two processes starting at once both write a temporary file and link it into place; the
    second link fails and that process reads the winner's value.
    """
    target = directory / name
    if not target.exists():
        tmp = directory / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(generate() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    _tighten(target, PRIVATE_FILE_MODE)
    value = target.read_text().strip()
    if not value:
        raise RuntimeError(f"{target} is empty; delete it to generate a new one.")
    return value


def new_secret_key() -> str:
    """A Django secret key: 50 URL-safe random characters."""
    return secrets.token_urlsafe(48)


def new_field_key() -> str:
    """A Fernet key for secrets at rest."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def field_keys_generator(existing_database: Path | None) -> Callable[[], str]:
    """What to write into a new `var/field_keys`: a fresh key, plus the legacy development key
    as a decrypt-only fallback when a database from before this change already exists."""

    def _generate() -> str:
        fresh = new_field_key()
        upgrading = (
            existing_database is not None
            and existing_database.is_file()
            and existing_database.stat().st_size > 0
        )
        return f"{fresh},{LEGACY_DEV_FIELD_KEY}" if upgrading else fresh

    return _generate
