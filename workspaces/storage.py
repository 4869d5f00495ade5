"""The hub mirror's bytes: content-addressed blobs behind Django's storage API.

A blob is named by the session and the sha256 of its bytes (`s<session>/<aa>/<sha256>`), never
by a user-supplied path, so no path a person or the AI sends can name a storage location. Any
storage backend works; the default is a local folder under `var/` (`CORTEX_WORKSPACE_ROOT`), and
a shared volume or object store serves several hub processes alike.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def mirror_storage() -> Storage:
    """The storage that holds every workspace mirror (settings read per call: tests move it)."""
    return FileSystemStorage(
        location=str(settings.WORKSPACE_ROOT),
        file_permissions_mode=0o600,
        directory_permissions_mode=0o700,
    )


def blob_name(*, session_id: int, sha256: str) -> str:
    """The storage name of one blob of one session's mirror."""
    if not SHA256.match(sha256):
        raise ValueError("not a sha256")
    return f"s{int(session_id)}/{sha256[:2]}/{sha256}"


def session_prefix(*, session_id: int) -> str:
    return f"s{int(session_id)}"
