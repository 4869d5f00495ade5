"""The session's skills under `.skills/<name>/` of its workspace, so their scripts run on nodes."""

from __future__ import annotations

import hashlib
import io
import logging

from django.db import transaction

from accounts.models import User
from cortex.errors import CortexError
from mesh.agent.workspace import WorkspaceError, clean_relative_path
from workspaces.models import Workspace, WorkspaceFile
from workspaces.services.files import manifest_put, mirror_store

logger = logging.getLogger("cortex.workspaces")

SKILLS_DIR = ".skills"


def _skill_files(*, user: User) -> dict[str, bytes]:
    """Workspace path -> bytes of every enabled skill the user may use (first name wins)."""
    from tools import selectors as tool_selectors

    files: dict[str, bytes] = {}
    seen: set[str] = set()
    for entry in tool_selectors.skill_list_for_user(user=user):
        if not entry.is_enabled or entry.name in seen:
            continue
        seen.add(entry.name)
        for name in ("SKILL.md", *entry.files):
            try:
                rel = clean_relative_path(f"{SKILLS_DIR}/{entry.name}/{name}")
                text = tool_selectors.skill_read_file(user=user, name=entry.name, file_path=name)
            except (WorkspaceError, ValueError, CortexError):
                continue  # a name the path rule refuses never reaches a node
            if rel.count("/") >= 2 and rel.split("/")[1] == entry.name:
                files[rel] = text.encode("utf-8")
    return files


def workspace_skills_publish(*, actor: User, workspace: Workspace) -> int:
    """Write the skills that changed into the mirror (the nodes follow); returns how many.
    Skill files that no longer exist are removed from `.skills/`."""
    wanted = _skill_files(user=actor)
    have = {
        path: (sha, mode)
        for path, sha, mode in WorkspaceFile.objects.filter(
            workspace=workspace, path__startswith=f"{SKILLS_DIR}/"
        ).values_list("path", "sha256", "mode")
    }
    changed = 0
    for path, data in wanted.items():
        digest = hashlib.sha256(data).hexdigest()
        # A script (`#!`) is executable on the nodes, so it runs as `.skills/<name>/<script>`.
        mode = 0o755 if data.startswith(b"#!") else 0o644
        if have.get(path) == (digest, mode):
            continue
        mirror_store(session_id=workspace.session_id, body=io.BytesIO(data), sha256=digest)
        try:
            with transaction.atomic():
                manifest_put(
                    workspace=workspace, path=path, size=len(data), sha256=digest, mode=mode
                )
        except CortexError:
            logger.warning("skill file %s not published to workspace %s", path, workspace.pk)
            continue
        changed += 1
    gone = [p for p in have if p not in wanted]
    if gone:
        WorkspaceFile.objects.filter(workspace=workspace, path__in=gone).delete()
        changed += len(gone)
    return changed
