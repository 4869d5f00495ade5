"""Publishing the session's skills under `.skills/`: only what changed is written, what no
longer exists goes, and the rest of the workspace is never touched."""

from __future__ import annotations

import hashlib

import pytest

from sessions_app.models import ChatSession
from tools import selectors as tool_selectors
from workspaces.models import Workspace, WorkspaceFile
from workspaces.services import workspace_configure
from workspaces.services.files import manifest_put
from workspaces.services.skills import workspace_skills_publish
from workspaces.storage import blob_name, mirror_storage

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace(user) -> Workspace:
    session = ChatSession.objects.create(owner=user, title="ws")
    return workspace_configure(actor=user, session=session, source="hub")


def _skill_rows(workspace: Workspace) -> dict[str, str]:
    rows = WorkspaceFile.objects.filter(workspace=workspace, path__startswith=".skills/")
    return dict(rows.values_list("path", "sha256"))


def test_publish_writes_each_enabled_skill_once(user, workspace) -> None:
    enabled = [e.name for e in tool_selectors.skill_list_for_user(user=user) if e.is_enabled]
    assert enabled, "the system skills are the sample"
    WorkspaceFile.objects.filter(workspace=workspace).delete()
    written = workspace_skills_publish(actor=user, workspace=workspace)
    rows = _skill_rows(workspace)
    assert written == len(rows) > 0
    assert {path.split("/")[1] for path in rows} == set(enabled)
    for path, sha in rows.items():
        name = path.split("/")[1]
        text = tool_selectors.skill_read_file(user=user, name=name, file_path=path.split("/", 2)[2])
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == sha
        assert mirror_storage().exists(blob_name(session_id=workspace.session_id, sha256=sha))
    assert workspace_skills_publish(actor=user, workspace=workspace) == 0  # nothing changed


def test_publish_replaces_changed_and_removes_stale_skill_files(user, workspace) -> None:
    before = _skill_rows(workspace)
    changed_path = sorted(before)[0]
    WorkspaceFile.objects.filter(workspace=workspace, path=changed_path).update(sha256="0" * 64)
    manifest_put(workspace=workspace, path=".skills/gone/SKILL.md", size=1, sha256="1" * 64)
    manifest_put(workspace=workspace, path="notes/.skills.txt", size=1, sha256="2" * 64)
    assert workspace_skills_publish(actor=user, workspace=workspace) == 2
    assert _skill_rows(workspace) == before
    assert WorkspaceFile.objects.filter(workspace=workspace, path="notes/.skills.txt").exists()


def test_skill_scripts_are_executable_on_the_nodes(user, workspace) -> None:
    """A skill file that starts with `#!` is published executable (so `.skills/<name>/<script>`
    runs on a node); one published plain before is fixed at the next publish."""
    script = ".skills/node-diagnostics/scripts/collect.sh"
    modes = dict(
        WorkspaceFile.objects.filter(workspace=workspace, path__startswith=".skills/").values_list(
            "path", "mode"
        )
    )
    assert modes[script] == 0o755
    assert modes[".skills/node-diagnostics/SKILL.md"] == 0o644
    WorkspaceFile.objects.filter(workspace=workspace, path=script).update(mode=0o644)
    assert workspace_skills_publish(actor=user, workspace=workspace) == 1
    assert WorkspaceFile.objects.get(workspace=workspace, path=script).mode == 0o755
