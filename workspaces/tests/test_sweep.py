"""The workspace sweep: mirrors of deleted sessions and unreferenced blobs go; rows follow the
attached nodes."""

from __future__ import annotations

import io

import pytest

from sessions_app.models import ChatSession, SessionNode
from workspaces.models import SyncState, WorkspaceNode
from workspaces.services import workspace_configure, workspace_file_write
from workspaces.services.files import mirror_store
from workspaces.services.sync import mirrors_sweep, workspace_sweep
from workspaces.storage import blob_name, mirror_storage

pytestmark = pytest.mark.django_db

ORPHAN = "0" * 64


def _blobs() -> set[str]:
    storage, found = mirror_storage(), set()
    folders, _ = storage.listdir("")
    for folder in folders:
        for shard in storage.listdir(folder)[0]:
            found.update(f"{folder}/{shard}/{b}" for b in storage.listdir(f"{folder}/{shard}")[1])
    return found


def test_deleted_sessions_and_orphans_are_swept(user) -> None:
    kept, gone = ChatSession.objects.create(owner=user), ChatSession.objects.create(owner=user)
    for session in (kept, gone):
        workspace_configure(actor=user, session=session, source="hub")
        workspace_file_write(actor=user, session=session, path="a.txt", body=io.BytesIO(b"a"))
    mirror_store(session_id=kept.pk, body=io.BytesIO(b"orphan"), sha256=ORPHAN)
    before = _blobs()
    assert blob_name(session_id=kept.pk, sha256=ORPHAN) in before
    assert mirrors_sweep() == 0  # all young: a write may be about to name them
    gone.delete()
    removed = mirrors_sweep(grace_s=0)
    after = _blobs()
    assert not [b for b in after if b.startswith(f"s{gone.pk}/")]
    assert blob_name(session_id=kept.pk, sha256=ORPHAN) not in after
    assert removed == len(before) - len(after) > 0
    import hashlib

    assert blob_name(session_id=kept.pk, sha256=hashlib.sha256(b"a").hexdigest()) in after


def test_the_sweep_follows_attachments(user, staff_user) -> None:
    from django.contrib.auth.models import Group

    from mesh import services as mesh_services

    session = ChatSession.objects.create(owner=user)
    workspace_configure(actor=user, session=session, source="hub")
    node, _ = mesh_services.node_create(actor=staff_user, node_id="box", display_name="Box")
    group = Group.objects.create(name="devs")
    group.user_set.add(user)
    mesh_services.node_grant(actor=staff_user, node=node, group=group)
    attachment = SessionNode.objects.create(session=session, node=node)
    workspace_sweep()
    row = WorkspaceNode.objects.get()
    assert (row.node_id, row.state, row.known) == (node.pk, SyncState.OFFLINE, None)
    attachment.delete()
    workspace_sweep()
    assert not WorkspaceNode.objects.exists()
