"""Agents REST: thin viewset actions that call agents services and selectors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_signed_in
from agents import selectors, services
from agents.api import serializers as s
from cortex.api.schema import error_response
from cortex.api.viewsets import CortexViewSet


class AgentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    CortexViewSet,
):
    """`/api/v1/agents/`: the caller's own agents, their runs, run now, pause and resume."""

    selector = staticmethod(selectors.agent_list_for_user)
    input_serializers = {
        "create": s.AgentCreateInput,
        "partial_update": s.AgentUpdateInput,
    }
    output_serializer = s.AgentOutput
    output_serializers = {
        "create": s.AgentCreatedOutput,
        "runs": s.RunOutput,
        "run": s.RunOutput,
        "cancel_run": s.RunOutput,
        "rotate_secret": s.SecretOutput,
    }
    created_actions = frozenset({"create"})

    @extend_schema(
        responses={
            201: s.AgentCreatedOutput,
            400: error_response("`invalid_input`, `invalid_trigger`, `unknown_node`, ..."),
        }
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input(request)
        agent, secret = services.agent_create(
            actor=user_signed_in(user=request.user), audit_context=self.audit_context, **data
        )
        agent = selectors.agent_get_for_user(
            user=user_signed_in(user=request.user), agent_id=agent.pk
        )
        agent.webhook_secret = secret  # rendered once; the row keeps only the ciphertext
        return self.render(agent, status_code=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        agent = self.get_object_or_404()
        data = self.validated_input(request, partial=True)
        services.agent_update(
            actor=user_signed_in(user=request.user),
            agent=agent,
            data=data,
            audit_context=self.audit_context,
        )
        return self.render(
            selectors.agent_get_for_user(user=user_signed_in(user=request.user), agent_id=agent.pk)
        )

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.agent_delete(
            actor=user_signed_in(user=request.user),
            agent=self.get_object_or_404(),
            audit_context=self.audit_context,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={
            202: s.RunOutput,
            409: error_response("`agent_paused`."),
            429: error_response("`run_too_soon`."),
        },
    )
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str) -> Response:
        run = services.run_now(
            actor=user_signed_in(user=request.user),
            agent=self.get_object_or_404(),
            audit_context=self.audit_context,
        )
        return self.render(run, status_code=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: s.RunOutput(many=True)})
    @action(detail=True, methods=["get"])
    def runs(self, request: Request, pk: str) -> Response:
        agent = self.get_object_or_404()
        return self.render_page(selectors.run_list_for_agent(agent=agent))

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("run_id", int, OpenApiParameter.PATH)],
        responses={
            202: s.RunOutput,
            404: error_response("`not_found`."),
            409: error_response("`run_finished`."),
        },
    )
    @action(detail=True, methods=["post"], url_path=r"runs/(?P<run_id>[^/.]+)/cancel")
    def cancel_run(self, request: Request, pk: str, run_id: str) -> Response:
        """Cancel a run: waiting or parked ones end at once, a running one stops its turn."""
        run = selectors.run_get_for_agent(agent=self.get_object_or_404(), run_id=run_id)
        run = services.run_cancel(
            actor=user_signed_in(user=request.user), run=run, audit_context=self.audit_context
        )
        return self.render(run, status_code=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: s.AgentOutput})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        agent = services.agent_set_paused(
            actor=user_signed_in(user=request.user),
            agent=self.get_object_or_404(),
            paused=True,
            audit_context=self.audit_context,
        )
        return self.render(
            selectors.agent_get_for_user(user=user_signed_in(user=request.user), agent_id=agent.pk)
        )

    @extend_schema(request=None, responses={200: s.AgentOutput})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        agent = services.agent_set_paused(
            actor=user_signed_in(user=request.user),
            agent=self.get_object_or_404(),
            paused=False,
            audit_context=self.audit_context,
        )
        return self.render(
            selectors.agent_get_for_user(user=user_signed_in(user=request.user), agent_id=agent.pk)
        )

    @extend_schema(request=None, responses={200: s.SecretOutput})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        agent, secret = services.agent_rotate_secret(
            actor=user_signed_in(user=request.user),
            agent=self.get_object_or_404(),
            audit_context=self.audit_context,
        )
        return self.render({"id": agent.pk, "webhook_secret": secret})


class AgentWebhookViewSet(CortexViewSet):
    """`POST /api/v1/agents/{id}/trigger/`: the signature is the only authority.

    `X-Cortex-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the agent's secret, or,
    with the optional `X-Cortex-Timestamp: <Unix seconds>`, of `"<timestamp>.<raw body>"`; a
    wrong or missing signature, a malformed timestamp or an unknown agent is 401
    `invalid_signature`, a timestamp outside the window 401 `stale_signature`, a signed request
    delivered before 409 `replayed_delivery`.
    """

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    selector = staticmethod(selectors.agent_list_for_user)
    output_serializer = s.RunOutput

    def http_method_not_allowed(  # type: ignore[override]  # DRF hands it its Request
        self, request: Request, *args: Any, **kwargs: Any
    ) -> Response:
        """Only a signed POST starts a run; anything else is refused like a bad signature."""
        raise services.InvalidSignature()

    @extend_schema(
        request=OpenApiTypes.BINARY,
        parameters=[
            OpenApiParameter(
                "X-Cortex-Signature",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description=(
                    "`sha256=<hex HMAC-SHA256 of the raw body>`, or of "
                    '`"<timestamp>.<raw body>"` when X-Cortex-Timestamp is sent'
                ),
            ),
            OpenApiParameter(
                "X-Cortex-Timestamp",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description=(
                    "Unix seconds when the request was signed; when sent, it is signed with the "
                    "body and must be within CORTEX_AGENT_WEBHOOK_WINDOW_S (300) of the hub."
                ),
            ),
        ],
        responses={
            202: s.RunOutput,
            401: error_response("`invalid_signature`, `stale_signature`."),
            413: error_response("`webhook_body_too_large`."),
            409: error_response("`agent_paused`, `replayed_delivery`."),
            429: error_response("`run_too_soon`."),
        },
    )
    def trigger(self, request: Request, agent_id: str) -> Response:
        run = services.webhook_trigger(
            agent_id=agent_id,
            body=request.body,
            signature=request.headers.get("X-Cortex-Signature", ""),
            timestamp=request.headers.get("X-Cortex-Timestamp", ""),
            audit_context=self.audit_context,
        )
        return self.render(run, status_code=status.HTTP_202_ACCEPTED)
