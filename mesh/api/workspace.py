"""The node's workspace for the console's file browser: list, download, delete.

`GET nodes/{id}/workspace/?path=DIR`, `GET|DELETE nodes/{id}/workspace/file/?path=P`. Each is
one files task on the node (grant-checked and audited by task dispatch), waited for here; an
upload is `POST nodes/{id}/files/`."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_signed_in
from cortex.api.schema import error_response
from cortex.api.viewsets import CortexViewSet
from mesh import selectors
from mesh.services import workspace

PATH = OpenApiParameter("path", str, description="A path inside the node's workspace.")
ERRORS = {
    400: error_response("`invalid_input`: no path, or a malformed one."),
    404: error_response("`not_found`: no such node for you, or no such path on it."),
    409: error_response(
        "`node_offline`, `node_inactive`, `skill_disabled`, or the node refused (its files-skill"
        " code, e.g. `path_outside_workspace`, `not_a_directory`)."
    ),
    504: error_response("`files_unfinished`: the node did not answer in time."),
}


class WorkspaceEntryOutput(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    path = serializers.CharField(read_only=True)
    type = serializers.CharField(read_only=True)
    size = serializers.IntegerField(read_only=True)
    modified_at = serializers.CharField(read_only=True)


class WorkspaceListOutput(serializers.Serializer):
    path = serializers.CharField(read_only=True)
    entries = WorkspaceEntryOutput(many=True, read_only=True)
    truncated = serializers.BooleanField(read_only=True)


class NodeWorkspaceViewSet(CortexViewSet):
    """Thin transport over mesh.services.workspace; 404 outside the caller's grants."""

    selector = staticmethod(selectors.node_list_for_user)
    output_serializer = WorkspaceListOutput
    lookup_field = "node_id"

    @extend_schema(parameters=[PATH], responses={200: WorkspaceListOutput, **ERRORS})
    def list_dir(self, request: Request, node_id: str) -> Response:
        node = self.get_object_or_404()
        listing = workspace.workspace_list(
            actor=user_signed_in(user=request.user),
            node=node,
            path=request.query_params.get("path"),
            audit_context=self.audit_context,
        )
        return self.render(listing)

    @extend_schema(
        parameters=[PATH], responses={(200, "application/octet-stream"): bytes, **ERRORS}
    )
    def download(self, request: Request, node_id: str) -> HttpResponse:
        node = self.get_object_or_404()
        wanted = request.query_params.get("path", "")
        data = workspace.workspace_read(
            actor=user_signed_in(user=request.user),
            node=node,
            path=wanted,
            audit_context=self.audit_context,
        )
        name = wanted.rstrip("/").rsplit("/", 1)[-1] or "file"
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:200] or "file"
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{safe}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(parameters=[PATH], responses={204: None, **ERRORS})
    def remove(self, request: Request, node_id: str) -> Response:
        node = self.get_object_or_404()
        workspace.workspace_delete(
            actor=user_signed_in(user=request.user),
            node=node,
            path=request.query_params.get("path", ""),
            audit_context=self.audit_context,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns: list[URLPattern] = [
    path(
        "nodes/<slug:node_id>/workspace/",
        NodeWorkspaceViewSet.as_view({"get": "list_dir"}),
        name="node-workspace",
    ),
    path(
        "nodes/<slug:node_id>/workspace/file/",
        NodeWorkspaceViewSet.as_view({"get": "download", "delete": "remove"}),
        name="node-workspace-file",
    ),
]
