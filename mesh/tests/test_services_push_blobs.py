"""mesh/services/push_blobs.py: staged push blobs are named, found, opened and released only
inside the staging area."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from cortex.errors import NotFound
from mesh.services.push_blobs import (
    BLOB_PREFIX,
    push_blob_delete,
    push_blob_name,
    push_blob_of,
    push_blob_open,
    push_blob_release,
)


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def _stage(data: bytes = b"payload") -> str:
    return default_storage.save(push_blob_name(), ContentFile(data))


def test_push_blob_name_is_fresh_and_in_the_staging_area() -> None:
    names = {push_blob_name() for _ in range(3)}
    assert len(names) == 3
    assert all(n.startswith(BLOB_PREFIX) and ".." not in n for n in names)


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        ("files", {"action": "write", "blob": BLOB_PREFIX + "abc"}, BLOB_PREFIX + "abc"),
        ("files", {"action": "write", "blob": "mesh/browser/x.png"}, ""),
        ("files", {"action": "write", "blob": BLOB_PREFIX + "../secrets"}, ""),
        ("files", {"action": "write", "blob": 7}, ""),
        ("files", {"action": "read", "blob": BLOB_PREFIX + "abc"}, ""),
        ("shell", {"action": "write", "blob": BLOB_PREFIX + "abc"}, ""),
        ("files", "not a dict", ""),
    ],
)
def test_push_blob_of_names_only_our_own_staged_blobs(kind, payload, expected) -> None:  # type: ignore[no-untyped-def]
    assert push_blob_of(kind=kind, payload=payload) == expected


def test_push_blob_open_reads_a_staged_blob_and_refuses_the_rest(media) -> None:  # type: ignore[no-untyped-def]
    name = _stage(b"hello")
    with push_blob_open(name=name) as handle:
        assert handle.read() == b"hello"
    for other in ("mesh/browser/x.png", BLOB_PREFIX + "../../etc", BLOB_PREFIX + "gone"):
        with pytest.raises(NotFound) as caught:
            push_blob_open(name=other)
        assert caught.value.code == "push_blob_missing"


def test_push_blob_delete_is_idempotent(media) -> None:  # type: ignore[no-untyped-def]
    name = _stage()
    push_blob_delete(name=name)
    assert not default_storage.exists(name)
    push_blob_delete(name=name)  # a second release is fine


@pytest.mark.django_db(transaction=True)
def test_push_blob_release_deletes_on_commit_only(media) -> None:  # type: ignore[no-untyped-def]
    from django.db import transaction

    kept, released = _stage(), _stage()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        push_blob_release(kind="files", payload={"action": "write", "blob": kept})
        raise Rollback
    assert default_storage.exists(kept)

    with transaction.atomic():
        push_blob_release(kind="files", payload={"action": "write", "blob": released})
        assert default_storage.exists(released)  # not before the commit
    assert not default_storage.exists(released)

    push_blob_release(kind="shell", payload={"action": "write", "blob": kept})
    assert default_storage.exists(kept)
