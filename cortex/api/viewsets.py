"""The base of every REST viewset: grant-scoped querysets, per-action serializers, rendering.

Viewsets hold no rules. They validate with the action's input serializer, call a service or a
selector, and render with the output serializer. Objects outside the caller's grants never
enter the queryset, so they answer 404, not 403.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from accounts.context import AuditContext
from cortex import errors


class IsStaff(BasePermission):
    """Admins only (`is_staff`); anonymous callers still get 401 from authentication."""

    def has_permission(self, request: Request, view: Any) -> bool:
        from accounts.selectors import user_is_admin

        return user_is_admin(request.user)


class IsStaffOr404(IsStaff):
    """Admins only; on a detail route, a non-admin who cannot see the object gets 404.

    A 403 would confirm that a node id the caller has no grant on exists; the README promises
    404 for anything outside the caller's grants, admin-only actions included.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        if super().has_permission(request, view):
            return True
        user = request.user
        lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", "pk")
        if user and user.is_authenticated and lookup in getattr(view, "kwargs", {}):
            view.get_object_or_404()  # raises NotFound when the caller cannot see it
        return False


class CortexViewSet(GenericViewSet):
    """Login required; queryset from `selector(user=...)`; serializers chosen per action.

    Subclasses set `selector` (a grant-aware selector), `output_serializer` and, for writes,
    `input_serializers` keyed by action. `output_serializers` overrides the output per action.
    """

    permission_classes: Sequence[type[BasePermission]] = [IsAuthenticated]
    selector: ClassVar[Callable[..., QuerySet[Any]] | None] = None
    input_serializers: ClassVar[dict[str, type[serializers.BaseSerializer]]] = {}
    output_serializer: ClassVar[type[serializers.BaseSerializer] | None] = None
    output_serializers: ClassVar[dict[str, type[serializers.BaseSerializer]]] = {}
    #: Actions answered with 201 in the schema and by `render(..., created=True)`.
    created_actions: ClassVar[frozenset[str]] = frozenset({"create"})

    @cached_property
    def audit_context(self) -> AuditContext:
        """The caller's transport, address and client, built once per request for services."""
        return AuditContext.from_request(self.request)

    def get_queryset(self) -> QuerySet[Any]:
        selector = type(self).selector
        if selector is None:
            raise NotImplementedError(f"{type(self).__name__} must name a selector")
        return selector(user=self.request.user)

    def input_serializer_class(self) -> type[serializers.BaseSerializer] | None:
        return self.input_serializers.get(self.action or "")

    def output_serializer_class(self) -> type[serializers.BaseSerializer] | None:
        return self.output_serializers.get(self.action or "", self.output_serializer)

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.request is not None and self.request.method not in ("GET", "HEAD", "OPTIONS"):
            serializer = self.input_serializer_class()
            if serializer is not None:
                return serializer
        serializer = self.output_serializer_class()
        if serializer is None:
            raise NotImplementedError(f"{type(self).__name__} has no serializer for {self.action}")
        return serializer

    def validated_input(self, request: Request, *, partial: bool = False) -> dict[str, Any]:
        """Validate the body with this action's input serializer; raise a 400 on bad input."""
        serializer_class = self.input_serializer_class()
        if serializer_class is None:
            raise NotImplementedError(f"{type(self).__name__} has no input for {self.action}")
        serializer = serializer_class(
            data=request.data, partial=partial, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def validated_query(
        self, serializer_class: type[serializers.BaseSerializer], request: Request
    ) -> dict[str, Any]:
        serializer = serializer_class(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def render(
        self,
        instance: Model | Any,
        *,
        status_code: int = status.HTTP_200_OK,
        serializer_class: type[serializers.BaseSerializer] | None = None,
        many: bool = False,
    ) -> Response:
        serializer_class = serializer_class or self.output_serializer_class()
        if serializer_class is None:
            raise NotImplementedError(f"{type(self).__name__} has no output for {self.action}")
        data = serializer_class(instance, many=many, context=self.get_serializer_context()).data
        return Response(data, status=status_code)

    def render_page(
        self,
        queryset: QuerySet[Any] | list[Any] | Any,  # or anything a Paginator reads
        serializer_class: type[serializers.BaseSerializer] | None = None,
    ) -> Response:
        serializer_class = serializer_class or self.output_serializer_class()
        assert serializer_class is not None  # noqa: S101  # programming error, not input
        page = self.paginate_queryset(queryset)
        if page is None:
            return self.render(queryset, serializer_class=serializer_class, many=True)
        data = serializer_class(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    def get_object_or_404(self) -> Any:
        try:
            return self.get_object()
        except (ValueError, TypeError) as exc:
            # A malformed id (a bad uuid, say) is "not found", never a server error.
            raise errors.NotFound() from exc
