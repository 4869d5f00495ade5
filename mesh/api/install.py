"""One-line node install: the admin's `install-link`, and the script and bundle it leads to.

`POST /api/v1/nodes/{node_id}/install-link/` (admins) answers `{"url", "command", "expires_at"}`.
`GET /api/v1/install/{token}/` (no sign-in: the token is the authority, once) answers the
install script; `GET /api/v1/install/{token}/bundle.zip` the bundle that script downloads.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_signed_in
from cortex.api.schema import error_response
from cortex.api.viewsets import CortexViewSet, IsStaff
from mesh import selectors
from mesh.services import install_links

SCRIPT_TYPE = "text/x-shellscript; charset=utf-8"
REFUSED = (
    install_links.InstallLinkInvalid,
    install_links.InstallLinkUsed,
    install_links.InstallLinkExpired,
)


class InstallLinkOutput(serializers.Serializer):
    node_id = serializers.CharField(read_only=True)
    url = serializers.CharField(read_only=True, help_text="Works once, for 15 minutes.")
    command = serializers.CharField(read_only=True, help_text="`curl -fsSL '<url>' | bash`")
    expires_at = serializers.DateTimeField(read_only=True)


def _base_url(request: Request) -> str:
    """Where nodes reach the hub: CORTEX_PUBLIC_URL (the request's own origin if it is empty)."""
    return settings.PUBLIC_URL or request.build_absolute_uri("/")


class NodeInstallLinkViewSet(CortexViewSet):
    """Issue a one-line install command for a node (admins); audited."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.node_list_for_user)
    output_serializer = InstallLinkOutput
    lookup_field = "node_id"

    @extend_schema(request=None, responses={201: InstallLinkOutput})
    def create(self, request: Request, node_id: str) -> Response:
        node = selectors.node_get_for_user(user=request.user, node_id=node_id)
        issued = install_links.install_link_issue(
            actor=user_signed_in(user=request.user),
            node=node,
            base_url=_base_url(request),
            audit_context=self.audit_context,
        )
        return self.render(issued, status_code=201)


class InstallScriptViewSet(CortexViewSet):
    """The install script behind a link; a spent, expired or unknown link answers a script
    that says so and exits 1.

    Its status is 410 (or 404), except for curl: `curl -f` drops the body of an error answer,
    so `curl -fsSL URL | bash` would end silently with status 0. curl gets 200 and the script
    that fails; `X-Cortex-Error` carries the code for every client.
    """

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []  # the token in the path is the only authority
    selector = staticmethod(selectors.node_list_for_user)
    output_serializer = InstallLinkOutput

    @extend_schema(
        responses={
            (200, "text/x-shellscript"): OpenApiResponse(OpenApiTypes.STR),
            (404, "text/x-shellscript"): OpenApiResponse(OpenApiTypes.STR),
            (410, "text/x-shellscript"): OpenApiResponse(OpenApiTypes.STR),
        }
    )
    def retrieve(self, request: Request, token: str) -> HttpResponse:
        try:
            script = install_links.install_script_render(
                token=token,
                base_url=_base_url(request),
                audit_context=self.audit_context.via("install_link"),
            )
        except REFUSED as exc:
            curl = request.META.get("HTTP_USER_AGENT", "").lower().startswith("curl/")
            status = 200 if curl else (exc.http_status or 404)
            response = HttpResponse(
                install_links.install_refusal_script(exc.message),
                content_type=SCRIPT_TYPE,
                status=status,
            )
            response["X-Cortex-Error"] = exc.code
        else:
            response = HttpResponse(script, content_type=SCRIPT_TYPE)
        response["Cache-Control"] = "no-store"
        return response


class InstallBundleViewSet(CortexViewSet):
    """The bundle the install script downloads (a token that works once, minutes long)."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    selector = staticmethod(selectors.node_list_for_user)
    output_serializer = InstallLinkOutput

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
            410: error_response("`install_link_used` or `install_link_expired`."),
            404: error_response("`install_link_invalid`."),
        }
    )
    def retrieve(self, request: Request, token: str) -> HttpResponse:
        node_id, data = install_links.install_bundle_download(
            token=token, audit_context=self.audit_context.via("install_link")
        )
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="cortex-node-{node_id}.zip"'
        response["Cache-Control"] = "no-store"
        return response


TOKEN = "<str:token>"  # noqa: S105  # a URL converter, not a secret

urlpatterns: list[URLPattern] = [
    path(
        "nodes/<slug:node_id>/install-link/",
        NodeInstallLinkViewSet.as_view({"post": "create"}),
        name="node-install-link",
    ),
    path(
        f"install/{TOKEN}/",
        InstallScriptViewSet.as_view({"get": "retrieve"}),
        name="install-script",
    ),
    path(
        f"install/{TOKEN}/bundle.zip",
        InstallBundleViewSet.as_view({"get": "retrieve"}),
        name="install-bundle",
    ),
]
