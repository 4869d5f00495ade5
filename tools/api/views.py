"""REST viewsets of the tools app: the caller's tools, skills, and admins' tool switches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_signed_in
from cortex import errors
from cortex.api.viewsets import CortexViewSet, IsStaff
from tools import selectors, services
from tools.api.serializers import (
    SkillCreateInput,
    SkillListQuery,
    SkillOutput,
    SkillUpdateInput,
    ToolOutput,
    ToolSwitchCreateInput,
    ToolSwitchOutput,
)

if TYPE_CHECKING:
    from tools.models import Skill

SKILL_KEY = OpenApiParameter(
    "key",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="A system skill's name or a user skill's id.",
)


class SkillReadOnly(errors.PermissionDenied):
    code = "skill_read_only"
    default_message = "System skills are read-only."


class ToolViewSet(mixins.ListModelMixin, CortexViewSet):
    """The tools the caller may use: not switched off, and with a usable node if they need one."""

    output_serializer = ToolOutput  # tools are code, not rows: `list` asks the selector
    filter_backends: list[type] = []

    def list(self, request: Request) -> Response:
        return self.render_page(selectors.tools_for_user(user=request.user))


@extend_schema_view(
    retrieve=extend_schema(parameters=[SKILL_KEY]),
    partial_update=extend_schema(parameters=[SKILL_KEY]),
    destroy=extend_schema(parameters=[SKILL_KEY], responses={204: None}),
    list=extend_schema(parameters=[SkillListQuery]),
)
class SkillViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    CortexViewSet,
):
    """System skills (read-only), the caller's own skills and skills shared with their groups."""

    selector = staticmethod(selectors.skill_owned_queryset)
    input_serializers = {"create": SkillCreateInput, "partial_update": SkillUpdateInput}
    output_serializer = SkillOutput
    lookup_field = "key"
    lookup_value_regex = r"[a-z0-9][a-z0-9_-]{0,63}"
    filter_backends: list[type] = []

    def list(self, request: Request) -> Response:
        query = self.validated_query(SkillListQuery, request)
        entries = selectors.skill_list_for_user(
            user=user_signed_in(user=request.user), feature=query.get("feature")
        )
        return self.render_page(entries)

    def retrieve(self, request: Request, key: str) -> Response:
        return self.render(
            selectors.skill_get_for_user(user=user_signed_in(user=request.user), key=key)
        )

    def create(self, request: Request) -> Response:
        skill = services.skill_create(
            actor=user_signed_in(user=request.user),
            audit_context=self.audit_context,
            **self.validated_input(request),
        )
        entry = selectors.skill_get_for_user(
            user=user_signed_in(user=request.user), key=str(skill.pk)
        )
        return self.render(entry, status_code=201)

    def partial_update(self, request: Request, key: str) -> Response:
        skill = self._owned(key)
        data = self.validated_input(request, partial=True)
        services.skill_update(
            actor=user_signed_in(user=request.user),
            skill=skill,
            data=data,
            audit_context=self.audit_context,
        )
        return self.render(
            selectors.skill_get_for_user(user=user_signed_in(user=request.user), key=key)
        )

    def destroy(self, request: Request, key: str) -> Response:
        skill = self._owned(key)
        services.skill_delete(
            actor=user_signed_in(user=request.user),
            skill=skill,
            audit_context=self.audit_context,
        )
        return Response(status=204)

    def _owned(self, key: str) -> Skill:
        """The caller's own skill; system skills are read-only, anything else is a 404."""
        entry = selectors.skill_get_for_user(user=user_signed_in(user=self.request.user), key=key)
        if entry.source == "system":
            raise SkillReadOnly()
        if not key.isdigit():
            raise errors.NotFound("No such skill.")
        skill = self.get_queryset().filter(pk=int(key)).first()
        if skill is None:
            raise errors.NotFound("No such skill.")
        return skill


class ToolSwitchViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, CortexViewSet
):
    """Admins switch a tool off for everyone (group null) or for one group; DELETE switches on."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.tool_switch_list)
    input_serializers = {"create": ToolSwitchCreateInput}
    output_serializer = ToolSwitchOutput
    filter_backends: list[type] = []

    def create(self, request: Request) -> Response:
        data = self.validated_input(request)
        switch = services.tool_switch_create(
            actor=user_signed_in(user=request.user),
            tool_name=data["tool_name"],
            group_id=data["group"],
            reason=data["reason"],
            audit_context=self.audit_context,
        )
        return self.render(switch, status_code=201)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        switch = self.get_object_or_404()
        services.tool_switch_delete(
            actor=user_signed_in(user=request.user),
            switch=switch,
            audit_context=self.audit_context,
        )
        return Response(status=204)
