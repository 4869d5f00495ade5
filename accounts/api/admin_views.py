"""REST viewsets for admins: users, groups, memberships and the run-time app configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api.serializers import (
    AdminUserCreateInput,
    AdminUserOutput,
    AdminUserUpdateInput,
    AppConfigOutput,
    AppConfigUpdateInput,
    GroupInput,
    GroupMemberInput,
    GroupOutput,
)
from accounts.selectors import user_signed_in
from cortex.api.viewsets import CortexViewSet, IsStaff


class AdminUserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CortexViewSet):
    """Users for admins; DELETE deactivates (sessions end and tokens are revoked at once)."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.user_list)
    input_serializers = {"create": AdminUserCreateInput, "partial_update": AdminUserUpdateInput}
    output_serializer = AdminUserOutput

    def create(self, request: Request) -> Response:
        data = self.validated_input(request)
        user = services.user_create(
            actor=user_signed_in(user=request.user),
            audit_context=self.audit_context,
            **data,
        )
        return self.render(user, status_code=201)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object_or_404()
        data = self.validated_input(request, partial=True)
        user = services.user_update(
            actor=user_signed_in(user=request.user),
            user=user,
            data=data,
            audit_context=self.audit_context,
        )
        return self.render(user)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object_or_404()
        services.user_deactivate(
            actor=user_signed_in(user=request.user),
            user=user,
            audit_context=self.audit_context,
        )
        return Response(status=204)


class AdminGroupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CortexViewSet):
    """Groups and their members, for admins."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.group_list)
    input_serializers = {
        "create": GroupInput,
        "partial_update": GroupInput,
        "members": GroupMemberInput,
    }
    output_serializer = GroupOutput

    def create(self, request: Request) -> Response:
        group = services.group_create(
            actor=user_signed_in(user=request.user),
            audit_context=self.audit_context,
            **self.validated_input(request),
        )
        return self.render(group, status_code=201)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        group = self.get_object_or_404()
        data = self.validated_input(request)
        group = services.group_update(
            actor=user_signed_in(user=request.user),
            group=group,
            name=data["name"],
            audit_context=self.audit_context,
        )
        return self.render(group)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        group = self.get_object_or_404()
        services.group_delete(
            actor=user_signed_in(user=request.user),
            group=group,
            audit_context=self.audit_context,
        )
        return Response(status=204)

    @action(detail=True, methods=["post"], url_path="members")
    def members(self, request: Request, pk: str | None = None) -> Response:
        group = self.get_object_or_404()
        data = self.validated_input(request)
        member = selectors.user_get(user=user_signed_in(user=request.user), user_id=data["user"])
        services.group_member_add(
            actor=user_signed_in(user=request.user),
            group=group,
            user=member,
            audit_context=self.audit_context,
        )
        return self.render(
            selectors.group_get(user=user_signed_in(user=request.user), group_id=group.pk)
        )

    @extend_schema(
        parameters=[OpenApiParameter("user_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=None,
        responses={204: None},
    )
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>\d+)")
    def member_remove(self, request: Request, pk: str | None = None, user_id: str = "") -> Any:
        group = self.get_object_or_404()
        member = selectors.user_get(user=user_signed_in(user=request.user), user_id=user_id)
        services.group_member_remove(
            actor=user_signed_in(user=request.user),
            group=group,
            user=member,
            audit_context=self.audit_context,
        )
        return Response(status=204)


class AppConfigViewSet(CortexViewSet):
    """Run-time switches (password sign-in on/off); changes are audited."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.user_list)
    input_serializers = {"partial_update": AppConfigUpdateInput}
    output_serializer = AppConfigOutput

    def _rendered(self) -> Response:
        config = selectors.app_config_get()
        return self.render(
            {
                "allow_password_login": config.allow_password_login,
                "password_login_env": bool(settings.ALLOW_PASSWORD_LOGIN),
                "password_login_effective": selectors.password_login_allowed(),
                "updated_at": config.updated_at,
            }
        )

    def retrieve(self, request: Request) -> Response:
        return self._rendered()

    def partial_update(self, request: Request) -> Response:
        data = self.validated_input(request, partial=True)
        services.app_config_update(
            actor=user_signed_in(user=request.user),
            data=data,
            audit_context=self.audit_context,
        )
        return self._rendered()
