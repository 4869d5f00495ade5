"""`GET /api/v1/nodes/{node_id}/bundle/` (admins): the node's provisioning bundle as a zip."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from accounts.selectors import user_signed_in
from cortex.api.viewsets import CortexViewSet, IsStaffOr404
from mesh import selectors
from mesh.services.provisioning import INVITE_MODES, provisioning_bundle, wheel_target


class ZipRenderer(BaseRenderer):
    """Lets clients ask for `application/zip`; errors still render as JSON bytes."""

    media_type = "application/zip"
    format = "zip"
    charset = None

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()


class BundleQuery(serializers.Serializer):
    """`?invite=auto|new|none`; `?with_wheels=1&python_version=3.10&platform=...`: offline."""

    invite = serializers.ChoiceField(choices=INVITE_MODES, default="auto", required=False)
    with_wheels = serializers.BooleanField(required=False, default=False)
    python_version = serializers.CharField(required=False, default="", max_length=8)
    platform = serializers.CharField(required=False, default="", max_length=64)


class BundleOutput(serializers.Serializer):
    """Placeholder for the schema: the body is a zip archive."""


class NodeBundleViewSet(CortexViewSet):
    """The bundle: agent package, agent_config.yaml (fresh invite), run.sh, bootstrap.py."""

    permission_classes = [IsStaffOr404]
    renderer_classes = [JSONRenderer, ZipRenderer]
    selector = staticmethod(selectors.node_list_for_user)
    output_serializer = BundleOutput
    lookup_field = "node_id"

    def handle_exception(self, exc: Exception) -> Any:
        """Errors are JSON with a JSON content type, even when the zip was asked for."""
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    @extend_schema(
        parameters=[BundleQuery],
        responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)},
        description=(
            "The bundle never replaces a pending invite unasked. `invite=auto` (default): a new "
            "single-use invite when none is pending, else 409 `invite_pending`; `invite=new`: a "
            "new invite replacing the pending one; `invite=none`: no token in the bundle. "
            "Issuing an invite on its own: `POST /api/v1/nodes/{node_id}/invite/`. Audited. "
            "`with_wheels=1` adds the agent's requirements as wheels for `python_version` and "
            "`platform` (default: the hub's own), for nodes without a package index."
        ),
    )
    def retrieve(self, request: Request, node_id: str) -> HttpResponse:
        node = self.get_object_or_404()
        query = self.validated_query(BundleQuery, request)
        wheels = None
        if query["with_wheels"]:
            wheels = wheel_target(
                python_version=query["python_version"], platform=query["platform"]
            )
        data = provisioning_bundle(
            actor=user_signed_in(user=request.user),
            node=node,
            audit_context=self.audit_context,
            invite=query["invite"],
            wheels=wheels,
        )
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="cortex-node-{node.node_id}.zip"'
        response["Cache-Control"] = "no-store"
        return response


urlpatterns: list[URLPattern] = [
    path(
        "nodes/<slug:node_id>/bundle/",
        NodeBundleViewSet.as_view({"get": "retrieve"}),
        name="node-bundle",
    ),
]
