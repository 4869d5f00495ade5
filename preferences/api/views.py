"""REST endpoints of preferences: effective config, own layer, verify, YAML, admin layers."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_signed_in
from cortex import errors
from cortex.api.viewsets import CortexViewSet, IsStaff
from preferences import params, selectors, services
from preferences.api import serializers as s
from preferences.api.parsers import TextYamlParser, YamlAltParser, YamlTextParser
from preferences.models import Scope
from providers.base import KINDS

KIND_PARAM = OpenApiParameter(
    "kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(KINDS), description="llm, tts or stt"
)
GROUP_PARAM = OpenApiParameter("group_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class PreferencesViewSet(CortexViewSet):
    """The caller's effective configuration and own layer, verify, and YAML export/import."""

    selector = staticmethod(selectors.layer_list_for_user)
    input_serializers: ClassVar[dict[str, Any]] = {
        "partial_update": s.UserLayerInput,
        "update": s.UserLayerInput,
        "verify": s.VerifyInput,
        "import_yaml": s.ImportInput,
    }
    output_serializer = s.LayerOutput
    output_serializers: ClassVar[dict[str, Any]] = {
        "overview": s.OverviewOutput,
        "verify": s.VerifyOutput,
        "import_yaml": s.ImportOutput,
    }
    created_actions = frozenset()

    def get_parsers(self) -> list[Any]:
        # Called before `self.action` is set, so look at the method map of this route.
        if getattr(self, "action_map", {}).get("post") == "import_yaml":
            return [MultiPartParser(), YamlTextParser(), YamlAltParser(), TextYamlParser()]
        return [JSONParser()]

    @extend_schema(
        operation_id="preferences_overview",
        summary="Effective configuration for every kind, with sources",
    )
    def overview(self, request: Request) -> Response:
        data = {
            kind: selectors.effective_config_public(
                user=user_signed_in(user=request.user), kind=kind
            )
            for kind in KINDS
        }
        return self.render(data)

    def _own(self, request: Request, kind: str) -> Response:
        layer = selectors.layer_get(
            scope=Scope.USER, kind=kind, user=user_signed_in(user=request.user)
        )
        return self.render(selectors.layer_public(layer=layer, kind=kind, scope=Scope.USER))

    @extend_schema(
        operation_id="preferences_layer_retrieve",
        summary="Your own layer for one kind",
        parameters=[KIND_PARAM],
    )
    def retrieve(self, request: Request, kind: str) -> Response:
        params.check_kind(kind)
        return self._own(request, kind)

    def _write(self, request: Request, kind: str, *, replace: bool) -> Response:
        params.check_kind(kind)
        data = self.validated_input(request)
        services.layer_update(
            actor=user_signed_in(user=request.user),
            scope=Scope.USER,
            kind=kind,
            user=user_signed_in(user=request.user),
            data=data,
            replace=replace,
            audit_context=self.audit_context,
        )
        return self._own(request, kind)

    @extend_schema(
        operation_id="preferences_layer_partial_update",
        summary="Change your own layer (fields not sent stay)",
        parameters=[KIND_PARAM],
    )
    def partial_update(self, request: Request, kind: str) -> Response:
        return self._write(request, kind, replace=False)

    @extend_schema(
        operation_id="preferences_layer_update",
        summary="Replace your own layer (masked secrets stay)",
        parameters=[KIND_PARAM],
    )
    def update(self, request: Request, kind: str) -> Response:
        return self._write(request, kind, replace=True)

    @extend_schema(
        operation_id="preferences_verify",
        summary="Verify the effective config (or the given fields over it) with a real call",
        parameters=[KIND_PARAM],
    )
    def verify(self, request: Request, kind: str) -> Response:
        params.check_kind(kind)
        data = self.validated_input(request)
        timeout = data.pop("timeout", 10.0)
        provider, result = services.config_verify(
            actor=user_signed_in(user=request.user),
            kind=kind,
            overrides=data,
            timeout=timeout,
            audit_context=self.audit_context,
        )
        return self.render(
            {
                "provider": provider,
                "ok": result.ok,
                "latency_ms": result.latency_ms,
                "error_code": result.error_code,
                "message": result.message,
            }
        )

    @extend_schema(
        operation_id="preferences_export",
        summary="Your own layers as YAML (secrets left out, marked configured)",
        responses={
            (200, "application/yaml"): OpenApiResponse(OpenApiTypes.STR, description="YAML")
        },
    )
    def export(self, request: Request) -> HttpResponse:
        text = services.preferences_export(user=user_signed_in(user=request.user))
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="cortex-preferences.yaml"'
        return response

    @extend_schema(
        operation_id="preferences_import",
        summary="Import your layers from YAML: validated whole, applied all or nothing",
        request={
            "multipart/form-data": s.ImportInput,
            "application/yaml": OpenApiTypes.STR,
        },
    )
    def import_yaml(self, request: Request) -> Response:
        if isinstance(request.data, str):
            text = request.data
        else:
            upload = self.validated_input(request).get("file")
            if upload is None:
                raise errors.ValidationFailed(fields={"file": ["Send a YAML file or body."]})
            try:
                text = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise errors.ValidationFailed(fields={"file": ["Not UTF-8 text."]}) from None
        kinds = services.preferences_import(
            actor=user_signed_in(user=request.user),
            text=text,
            audit_context=self.audit_context,
        )
        return self.render({"imported": kinds})


class AdminSystemPreferencesViewSet(CortexViewSet):
    """The system layer (admins): defaults for everyone, and locks."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.layer_list_for_admin)
    input_serializers: ClassVar[dict[str, Any]] = {
        "partial_update": s.SystemLayerInput,
        "update": s.SystemLayerInput,
    }
    output_serializer = s.SystemLayerOutput

    def _render_layer(self, kind: str) -> Response:
        layer = selectors.layer_get(scope=Scope.SYSTEM, kind=kind)
        return self.render(selectors.layer_public(layer=layer, kind=kind, scope=Scope.SYSTEM))

    @extend_schema(
        operation_id="admin_preferences_system_retrieve",
        summary="The system layer for one kind",
        parameters=[KIND_PARAM],
    )
    def retrieve(self, request: Request, kind: str) -> Response:
        params.check_kind(kind)
        return self._render_layer(kind)

    def _write(self, request: Request, kind: str, *, replace: bool) -> Response:
        params.check_kind(kind)
        services.layer_update(
            actor=user_signed_in(user=request.user),
            scope=Scope.SYSTEM,
            kind=kind,
            data=self.validated_input(request),
            replace=replace,
            audit_context=self.audit_context,
        )
        return self._render_layer(kind)

    @extend_schema(
        operation_id="admin_preferences_system_partial_update",
        summary="Change the system layer",
        parameters=[KIND_PARAM],
    )
    def partial_update(self, request: Request, kind: str) -> Response:
        return self._write(request, kind, replace=False)

    @extend_schema(
        operation_id="admin_preferences_system_update",
        summary="Replace the system layer",
        parameters=[KIND_PARAM],
    )
    def update(self, request: Request, kind: str) -> Response:
        return self._write(request, kind, replace=True)


class AdminGroupPreferencesViewSet(CortexViewSet):
    """A group's layer (admins): values, locks, and the providers and models it may use."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.layer_list_for_admin)
    input_serializers: ClassVar[dict[str, Any]] = {
        "partial_update": s.GroupLayerInput,
        "update": s.GroupLayerInput,
    }
    output_serializer = s.GroupLayerOutput

    def _render_layer(self, group: Any, kind: str) -> Response:
        layer = selectors.layer_get(scope=Scope.GROUP, kind=kind, group=group)
        return self.render(selectors.layer_public(layer=layer, kind=kind, scope=Scope.GROUP))

    @extend_schema(
        operation_id="admin_preferences_group_retrieve",
        summary="A group's layer for one kind",
        parameters=[GROUP_PARAM, KIND_PARAM],
    )
    def retrieve(self, request: Request, group_id: int, kind: str) -> Response:
        params.check_kind(kind)
        group = selectors.group_get_for_admin(
            user=user_signed_in(user=request.user), group_id=group_id
        )
        return self._render_layer(group, kind)

    def _write(self, request: Request, group_id: int, kind: str, *, replace: bool) -> Response:
        params.check_kind(kind)
        group = selectors.group_get_for_admin(
            user=user_signed_in(user=request.user), group_id=group_id
        )
        services.layer_update(
            actor=user_signed_in(user=request.user),
            scope=Scope.GROUP,
            kind=kind,
            group=group,
            data=self.validated_input(request),
            replace=replace,
            audit_context=self.audit_context,
        )
        return self._render_layer(group, kind)

    @extend_schema(
        operation_id="admin_preferences_group_partial_update",
        summary="Change a group's layer",
        parameters=[GROUP_PARAM, KIND_PARAM],
    )
    def partial_update(self, request: Request, group_id: int, kind: str) -> Response:
        return self._write(request, group_id, kind, replace=False)

    @extend_schema(
        operation_id="admin_preferences_group_update",
        summary="Replace a group's layer",
        parameters=[GROUP_PARAM, KIND_PARAM],
    )
    def update(self, request: Request, group_id: int, kind: str) -> Response:
        return self._write(request, group_id, kind, replace=True)
