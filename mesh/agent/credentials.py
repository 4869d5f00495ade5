"""The node credential on disk: one file, mode 0600, replaced atomically on rotation."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


def fingerprint(secret: str) -> str:
    """First 12 hex characters of sha256(secret): how the hub recognises a credential."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


class CredentialStore:
    """Reads and writes the node credential file (only its owner may read it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> str | None:
        """The saved credential, or None before the first Join."""
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return None
        return text or None

    def save(self, secret: str) -> None:
        """Write atomically with mode 0600 (never readable by others, even briefly)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secret.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
