"""Workspace REST: /sessions/{id}/workspace/, files/ and file/ (raw bodies), thin as the rest."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_signed_in
from cortex.api.viewsets import CortexViewSet
from sessions_app import selectors as session_selectors
from workspaces import selectors, services
from workspaces.api.serializers import (
    EntryOutput,
    FileOutput,
    WorkspaceOutput,
    WorkspaceResolveInput,
    WorkspaceUpdateInput,
)
from workspaces.services import sync
from workspaces.services.files import workspace_file_check_length


class RawBodyParser(BaseParser):
    """Any content type: the view reads the raw stream itself (never parsed, never in memory)."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream


class WorkspaceViewSet(CortexViewSet):
    """A session's workspace; sessions outside the caller's own answer 404."""

    selector = staticmethod(session_selectors.session_list_for_user)
    input_serializers = {"partial_update": WorkspaceUpdateInput, "resolve": WorkspaceResolveInput}
    output_serializer = WorkspaceOutput
    output_serializers = {"files": EntryOutput, "upload": FileOutput}

    def get_parsers(self) -> list[BaseParser]:
        if getattr(self, "action", None) == "upload" or (
            self.request is not None and self.request.method == "PUT"
        ):
            return [RawBodyParser()]
        return super().get_parsers()

    def _render_workspace(self, workspace: Any) -> Response:
        context = {
            **self.get_serializer_context(),
            "nodes": selectors.workspace_nodes(workspace=workspace),
        }
        return Response(WorkspaceOutput(workspace, context=context).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        session = self.get_object_or_404()
        return self._render_workspace(selectors.workspace_of(session=session))

    def partial_update(self, request: Request, pk: str) -> Response:
        session = self.get_object_or_404()
        data = self.validated_input(request)
        workspace = services.workspace_configure(
            actor=user_signed_in(user=request.user),
            session=session,
            source=data["source"],
            node_id=data.get("node_id") or None,
            path=data.get("path"),
            audit_context=self.audit_context,
        )
        return self._render_workspace(workspace)

    def resync(self, request: Request, pk: str) -> Response:
        """Every node reports its files again; differences are synced or shown as drift."""
        session = self.get_object_or_404()
        workspace = services.workspace_active(session=session)
        sync.workspace_resync(actor=user_signed_in(user=request.user), workspace_id=workspace.pk)
        return self._render_workspace(workspace)

    def resolve(self, request: Request, pk: str) -> Response:
        """Keep the source's version of a node's drift, or promote the node's."""
        session = self.get_object_or_404()
        data = self.validated_input(request)
        workspace = services.workspace_active(session=session)
        sync.workspace_drift_resolve(
            actor=user_signed_in(user=request.user),
            workspace=workspace,
            node_id=data["node_id"],
            action=data["action"],
            paths=data.get("paths"),
        )
        return self._render_workspace(workspace)

    def files(self, request: Request, pk: str) -> Response:
        session = self.get_object_or_404()
        entries = selectors.workspace_file_list(
            workspace=selectors.workspace_of(session=session), path=_path_param(request)
        )
        return Response({"results": EntryOutput(entries, many=True).data})

    def download(self, request: Request, pk: str) -> FileResponse:
        session = self.get_object_or_404()
        row, handle = selectors.workspace_file_open(
            workspace=selectors.workspace_of(session=session), path=_path_param(request)
        )
        name = row.path.rsplit("/", 1)[-1]
        response = FileResponse(
            handle, as_attachment=True, filename=name, content_type="application/octet-stream"
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["ETag"] = f'"{row.sha256}"'
        return response

    def upload(self, request: Request, pk: str) -> Response:
        session = self.get_object_or_404()
        length = request.META.get("CONTENT_LENGTH") or ""
        if length.isdigit():
            workspace_file_check_length(content_length=int(length))
        row = services.workspace_file_write(
            actor=user_signed_in(user=request.user),
            session=session,
            path=_path_param(request),
            body=request.stream or _Empty(),  # type: ignore[arg-type]  # read() is all it needs
            audit_context=self.audit_context,
        )
        return self.render(row, serializer_class=FileOutput)

    def remove(self, request: Request, pk: str) -> Response:
        session = self.get_object_or_404()
        services.workspace_file_delete(
            actor=user_signed_in(user=request.user),
            session=session,
            path=_path_param(request),
            audit_context=self.audit_context,
        )
        return Response(status=204)


def _path_param(request: Request) -> str:
    """`?path=` as sent: the one path rule in the service judges it (NUL bytes included)."""
    return str(request.query_params.get("path", ""))


class _Empty:
    """An empty body (DRF hands no stream when Content-Length is 0)."""

    def read(self, size: int = -1) -> bytes:
        return b""
