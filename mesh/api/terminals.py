"""Terminal sessions of a node and their recordings.

`GET /api/v1/nodes/{node_id}/terminals/` lists the caller's sessions on the node (admins: all),
newest first; `GET /api/v1/nodes/{node_id}/terminals/{session}/cast` is one recording as an
asciicast v2 file (a JSON header line, then `[seconds, "o", text]` lines). A node or session
outside the caller's grants answers 404.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from cortex.api.schema import error_response
from cortex.api.viewsets import CortexViewSet
from mesh import selectors
from mesh.selectors import terminals

ERRORS = {404: error_response("No such node or terminal session, or outside your grants.")}


class TerminalSessionOutput(serializers.Serializer):
    id = serializers.CharField(read_only=True)
    node_id = serializers.CharField(source="node.node_id", read_only=True)
    user = serializers.EmailField(source="user.email", read_only=True, default=None)
    status = serializers.CharField(read_only=True)
    cols = serializers.IntegerField(read_only=True)
    rows = serializers.IntegerField(read_only=True)
    exit_code = serializers.IntegerField(read_only=True, allow_null=True)
    error_code = serializers.CharField(read_only=True)
    last_seq = serializers.IntegerField(read_only=True)
    output_bytes = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    ended_at = serializers.DateTimeField(read_only=True, allow_null=True)


class TerminalSessionViewSet(CortexViewSet):
    """A node's terminal sessions (grant-scoped) and their asciicast recordings."""

    selector = staticmethod(selectors.node_list_for_user)
    output_serializer = TerminalSessionOutput
    lookup_field = "node_id"

    @extend_schema(responses={200: TerminalSessionOutput(many=True), **ERRORS})
    def list(self, request: Request, node_id: str) -> Response:
        return self.render_page(
            terminals.terminal_list_for_user(user=request.user, node_id=node_id)
        )

    @extend_schema(responses={(200, "application/x-asciicast"): bytes, **ERRORS})
    def cast(self, request: Request, node_id: str, session: str) -> HttpResponse:
        found = terminals.terminal_get_for_user(
            user=request.user, node_id=node_id, session_id=session
        )
        response = HttpResponse(
            "".join(terminals.terminal_cast(session=found)),
            content_type="application/x-asciicast",
        )
        response["Content-Disposition"] = f'attachment; filename="terminal-{found.pk}.cast"'
        return response


urlpatterns: list[URLPattern] = [
    path(
        "nodes/<slug:node_id>/terminals/",
        TerminalSessionViewSet.as_view({"get": "list"}),
        name="node-terminals",
    ),
    path(
        "nodes/<slug:node_id>/terminals/<str:session>/cast",
        TerminalSessionViewSet.as_view({"get": "cast"}),
        name="node-terminal-cast",
    ),
]
