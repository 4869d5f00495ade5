"""The workspace errors (codes are API: add, never rename)."""

from __future__ import annotations

from cortex.errors import Conflict, NotFound, ValidationFailed


class WorkspacePathInvalid(ValidationFailed):
    """A path the one workspace path rule refuses (`mesh.agent.workspace.clean_relative_path`)."""

    code = "invalid_path"
    default_message = "The path is not a valid workspace path."


class WorkspacePathOutside(ValidationFailed):
    code = "path_outside_workspace"
    default_message = "The path leaves the workspace."


class WorkspaceDisabled(Conflict):
    code = "workspace_disabled"
    default_message = "This session has no workspace (source is none)."


class WorkspaceTooLarge(ValidationFailed):
    code = "workspace_too_large"
    default_message = "The workspace would exceed its size limit."
    http_status = 413


class WorkspaceFileTooLarge(ValidationFailed):
    code = "workspace_file_too_large"
    default_message = "The file is larger than the per-file limit."
    http_status = 413


class WorkspacePathConflict(Conflict):
    code = "workspace_path_conflict"
    default_message = "A file and a folder would share this path."


class WorkspaceFileMissing(NotFound):
    code = "not_found"
    default_message = "No such file in the workspace."


class WorkspaceNoDrift(Conflict):
    code = "workspace_no_drift"
    default_message = "That node has no drift to resolve."


class WorkspaceDriftNotFetched(Conflict):
    code = "workspace_drift_not_fetched"
    default_message = "The node's version has not reached the hub yet; try again shortly."
