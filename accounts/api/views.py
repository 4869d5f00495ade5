"""REST viewsets of the accounts app for every signed-in user: sign-in, me, tokens, tickets."""

from __future__ import annotations

from typing import Any

from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api.csrf import enforce_browser_csrf
from accounts.api.filters import AuditEventFilter
from accounts.api.serializers import (
    AuditEventOutput,
    CsrfOutput,
    LoginInput,
    MeOutput,
    MeUpdateInput,
    PasswordChangeInput,
    TokenCreatedOutput,
    TokenCreateInput,
    TokenOutput,
    WsTicketOutput,
)
from accounts.api.throttles import LoginAccountThrottle, LoginIpThrottle
from accounts.selectors import user_signed_in
from accounts.services.tickets import TICKET_TTL_SECONDS
from cortex.api.viewsets import CortexViewSet, IsStaff


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CortexViewSet):
    """The audit log, read-only, for admins."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.audit_list)
    output_serializer = AuditEventOutput
    filterset_class = AuditEventFilter


class LoginViewSet(CortexViewSet):
    """Password sign-in: a session cookie on success; throttled per address and per account."""

    permission_classes = [AllowAny]
    throttle_classes = [LoginIpThrottle, LoginAccountThrottle]
    selector = staticmethod(selectors.user_me)
    input_serializers = {"create": LoginInput}
    output_serializer = MeOutput
    created_actions = frozenset()

    def create(self, request: Request) -> Response:
        enforce_browser_csrf(request._request)
        data = self.validated_input(request)
        user = services.password_login(
            request=request._request, email=data["email"], password=data["password"]
        )
        return self.render(user)


class LogoutViewSet(CortexViewSet):
    """Ends the caller's session."""

    selector = staticmethod(selectors.user_me)

    @extend_schema(request=None, responses={204: None})
    def create(self, request: Request) -> Response:
        services.logout(request=request._request, user=user_signed_in(user=request.user))
        return Response(status=204)


class CsrfViewSet(CortexViewSet):
    """Sets the CSRF cookie and returns the token, for SPAs and scripts that use sessions."""

    permission_classes = [AllowAny]
    pagination_class = None  # one object, not a page (the schema said a paginated list)
    selector = staticmethod(selectors.user_me)
    output_serializer = CsrfOutput

    def list(self, request: Request) -> Response:
        return self.render({"csrf_token": get_token(request._request)})


class MeViewSet(CortexViewSet):
    """The caller's own profile; `display_name` and `default_approval_policy` are writable."""

    selector = staticmethod(selectors.user_me)
    input_serializers = {"partial_update": MeUpdateInput}
    output_serializer = MeOutput

    def retrieve(self, request: Request) -> Response:
        return self.render(request.user)

    def partial_update(self, request: Request) -> Response:
        data = self.validated_input(request, partial=True)
        requested = list(request.data.keys()) if hasattr(request.data, "keys") else []
        user = services.user_update_self(
            actor=user_signed_in(user=request.user),
            data=data,
            requested=requested,
            audit_context=self.audit_context,
        )
        return self.render(user)


class PasswordChangeViewSet(CortexViewSet):
    """The caller changes their own password: the current one, then Django's validators."""

    throttle_classes = [LoginIpThrottle]
    selector = staticmethod(selectors.user_me)
    input_serializers = {"create": PasswordChangeInput}
    created_actions = frozenset()

    @extend_schema(request=PasswordChangeInput, responses={204: None})
    def create(self, request: Request) -> Response:
        data = self.validated_input(request)
        services.user_password_change(
            actor=user_signed_in(user=request.user),
            current_password=data["current_password"],
            new_password=data["new_password"],
            audit_context=self.audit_context,
            session_request=request._request,
        )
        return Response(status=204)


class MyTokenViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, CortexViewSet
):
    """The caller's personal API tokens: the plaintext is in the create response only."""

    selector = staticmethod(selectors.token_list_for_user)
    input_serializers = {"create": TokenCreateInput}
    output_serializer = TokenOutput
    output_serializers = {"create": TokenCreatedOutput}

    def create(self, request: Request) -> Response:
        data = self.validated_input(request)
        token, plaintext = services.token_create(
            actor=user_signed_in(user=request.user),
            user=user_signed_in(user=request.user),
            name=data["name"],
            expires_days=data.get("expires_days"),
            audit_context=self.audit_context,
        )
        token.plaintext = plaintext  # type: ignore[attr-defined]  # rendered once, never stored
        return self.render(token, status_code=201)

    def perform_destroy(self, instance: Any) -> None:
        services.token_revoke(
            actor=user_signed_in(user=self.request.user),
            token=instance,
            audit_context=self.audit_context,
        )


class WsTicketViewSet(CortexViewSet):
    """A single-use ticket for `?ticket=` on a WebSocket URL, valid 30 s."""

    selector = staticmethod(selectors.user_me)
    output_serializer = WsTicketOutput
    permission_classes: list[type[BasePermission]] = [IsAuthenticated]

    @extend_schema(request=None)
    def create(self, request: Request) -> Response:
        ticket = services.ws_ticket_issue(user=user_signed_in(user=request.user))
        return self.render({"ticket": ticket, "expires_in": TICKET_TTL_SECONDS}, status_code=201)
