"""The mirror's file services called directly: the declared-length cap, the active-workspace
gate, the manifest upsert with its caps and shape rule, and delete with its audit row."""

from __future__ import annotations

import hashlib
import io

import pytest

from accounts.models import AuditEvent
from sessions_app.models import ChatSession
from workspaces.errors import (
    WorkspaceDisabled,
    WorkspaceFileMissing,
    WorkspaceFileTooLarge,
    WorkspacePathConflict,
    WorkspaceTooLarge,
)
from workspaces.models import WorkspaceFile
from workspaces.selectors import workspace_total_bytes
from workspaces.services import workspace_configure, workspace_file_write
from workspaces.services.files import (
    manifest_put,
    workspace_active,
    workspace_file_check_length,
    workspace_file_delete,
)

pytestmark = pytest.mark.django_db

SHA = "a" * 64


def _own_files() -> list[tuple]:
    """The manifest rows the test wrote (configure also publishes the skills under .skills/)."""
    rows = WorkspaceFile.objects.exclude(path__startswith=".skills/").order_by("path")
    return list(rows.values_list("path", "size", "mode"))


@pytest.fixture
def session(user) -> ChatSession:
    return ChatSession.objects.create(owner=user, title="ws")


@pytest.fixture
def hub_session(user, session) -> ChatSession:
    workspace_configure(actor=user, session=session, source="hub")
    return session


def test_check_length_allows_the_cap_and_refuses_past_it(settings) -> None:
    settings.WORKSPACE_MAX_FILE_BYTES = 10
    workspace_file_check_length(content_length=0)
    workspace_file_check_length(content_length=10)
    with pytest.raises(WorkspaceFileTooLarge) as caught:
        workspace_file_check_length(content_length=11)
    assert caught.value.code == "workspace_file_too_large"
    assert caught.value.http_status == 413


def test_active_refuses_a_session_without_a_workspace(user, session) -> None:
    with pytest.raises(WorkspaceDisabled) as caught:
        workspace_active(session=session)
    assert caught.value.code == "workspace_disabled"
    workspace_configure(actor=user, session=session, source="hub")
    assert workspace_active(session=session).session_id == session.pk
    workspace_configure(actor=user, session=session, source="none")
    with pytest.raises(WorkspaceDisabled):
        workspace_active(session=session)


def test_manifest_put_upserts_one_row_and_masks_the_mode(hub_session) -> None:
    workspace = workspace_active(session=hub_session)
    row = manifest_put(workspace=workspace, path="a/b.txt", size=3, sha256=SHA, mode=0o104755)
    assert (row.path, row.size, row.sha256, row.mode) == ("a/b.txt", 3, SHA, 0o755)
    again = manifest_put(workspace=workspace, path="a/b.txt", size=5, sha256="b" * 64)
    assert again.pk == row.pk
    assert _own_files() == [("a/b.txt", 5, 0o755)]  # rewritten without a mode: it keeps its own
    manifest_put(workspace=workspace, path="a/b.txt", size=5, sha256="b" * 64, mode=0o644)
    assert _own_files() == [("a/b.txt", 5, 0o644)]


def test_manifest_put_refuses_a_file_where_a_folder_is_and_under_a_file(hub_session) -> None:
    workspace = workspace_active(session=hub_session)
    manifest_put(workspace=workspace, path="dir/file.txt", size=1, sha256=SHA)
    for path in ("dir", "dir/file.txt/inner"):
        with pytest.raises(WorkspacePathConflict) as caught:
            manifest_put(workspace=workspace, path=path, size=1, sha256=SHA)
        assert caught.value.code == "workspace_path_conflict"
    assert [row[0] for row in _own_files()] == ["dir/file.txt"]


def test_manifest_put_refuses_past_the_workspace_cap(settings, hub_session) -> None:
    workspace = workspace_active(session=hub_session)
    settings.WORKSPACE_MAX_BYTES = workspace_total_bytes(workspace=workspace) + 10
    manifest_put(workspace=workspace, path="a", size=6, sha256=SHA)
    manifest_put(workspace=workspace, path="a", size=10, sha256=SHA)  # a replacement counts once
    with pytest.raises(WorkspaceTooLarge) as caught:
        manifest_put(workspace=workspace, path="b", size=1, sha256=SHA)
    assert caught.value.code == "workspace_too_large"
    assert not WorkspaceFile.objects.filter(path="b").exists()


def test_delete_removes_a_folder_and_is_audited(
    user, hub_session, django_capture_on_commit_callbacks
) -> None:
    for path in ("docs/a.txt", "docs/sub/b.txt", "docsx.txt", "keep.txt"):
        workspace_file_write(
            actor=user, session=hub_session, path=path, body=io.BytesIO(b"secret-bytes")
        )
    with django_capture_on_commit_callbacks() as callbacks:
        count = workspace_file_delete(actor=user, session=hub_session, path="docs")
    assert count == 2
    assert len(callbacks) == 1  # the nodes follow once committed
    assert [row[0] for row in _own_files()] == ["docsx.txt", "keep.txt"]
    event = AuditEvent.objects.get(action="workspace.delete")
    assert (event.actor_id, event.target_type, event.target_id) == (
        user.pk,
        "session",
        str(hub_session.pk),
    )
    assert event.details == {"path": "docs", "files": 2}
    assert "secret-bytes" not in str(event.details)
    assert hashlib.sha256(b"secret-bytes").hexdigest() not in str(event.details)


def test_delete_refuses_a_missing_path_and_a_disabled_workspace(user, session) -> None:
    with pytest.raises(WorkspaceDisabled):
        workspace_file_delete(actor=user, session=session, path="a.txt")
    workspace_configure(actor=user, session=session, source="hub")
    with pytest.raises(WorkspaceFileMissing) as caught:
        workspace_file_delete(actor=user, session=session, path="a.txt")
    assert caught.value.code == "not_found"
    assert not AuditEvent.objects.filter(action="workspace.delete").exists()
