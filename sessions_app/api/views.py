"""Sessions REST: thin viewset actions that call sessions_app services and selectors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cortex.api.viewsets import CortexViewSet
from sessions_app import selectors, services
from sessions_app.api import serializers as s


class SessionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    CortexViewSet,
):
    """`/api/v1/sessions/` and its nested messages, nodes, approvals, cancel and events."""

    selector = staticmethod(selectors.session_list_for_user)
    input_serializers = {
        "create": s.SessionCreateInput,
        "partial_update": s.SessionUpdateInput,
        "messages": s.MessagePostInput,
        "nodes": s.NodeAttachInput,
    }
    output_serializer = s.SessionOutput
    output_serializers = {
        "messages": s.MessageOutput,
        "nodes": s.AttachmentOutput,
        "approvals": s.ApprovalOutput,
        "approval_approve": s.ApprovalOutput,
        "approval_deny": s.ApprovalOutput,
        "cancel": s.CancelOutput,
        "events": s.EventsOutput,
    }

    def _session(self) -> Any:
        session = self.get_object_or_404()
        if services.turns_reap_stale(session_ids=[session.pk]):
            session.refresh_from_db()
        return session

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.turns_reap_stale(owner=request.user)
        return self.render_page(self.get_queryset())

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.render(self._session())

    def create(self, request: Request) -> Response:
        session = services.session_create(actor=request.user, **self.validated_input(request))
        return self.render(session, status_code=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        session = services.session_update(
            actor=request.user,
            session=self.get_object_or_404(),
            data=self.validated_input(request, partial=True),
        )
        return self.render(session)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.session_delete(actor=request.user, session=self.get_object_or_404())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["GET"], responses={200: s.MessageOutput(many=True)})
    @extend_schema(methods=["POST"], responses={202: s.MessagePostOutput})
    @action(detail=True, methods=["get", "post"], url_path="messages")
    def messages(self, request: Request, pk: str) -> Response:
        session = self._session()
        if request.method == "GET":
            return self.render_page(selectors.message_list(session=session))
        user_message, assistant = services.message_post(
            actor=request.user, session=session, **self.validated_input(request)
        )
        return self.render(
            {"user_message_id": user_message.pk, "assistant_message_id": assistant.pk},
            serializer_class=s.MessagePostOutput,
            status_code=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(methods=["GET"], responses={200: s.AttachmentOutput(many=True)})
    @extend_schema(methods=["POST"], responses={201: s.AttachmentOutput})
    @action(detail=True, methods=["get", "post"], url_path="nodes")
    def nodes(self, request: Request, pk: str) -> Response:
        session = self.get_object_or_404()
        if request.method == "GET":
            return self.render_page(selectors.attachment_list(session=session))
        attachment = services.node_attach(
            actor=request.user, session=session, **self.validated_input(request)
        )
        return self.render(attachment, status_code=status.HTTP_201_CREATED)

    @action(detail=True, methods=["delete"], url_path=r"nodes/(?P<node_id>[-a-zA-Z0-9_.]+)")
    def node_detach(self, request: Request, pk: str, node_id: str) -> Response:
        session = self.get_object_or_404()
        attachment = selectors.attachment_get(session=session, node_id=node_id)
        services.node_detach(actor=request.user, attachment=attachment)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: s.CancelOutput})
    @action(detail=True, methods=["post"], url_path="cancel")
    def cancel(self, request: Request, pk: str) -> Response:
        message = services.turn_cancel(actor=request.user, session=self.get_object_or_404())
        return self.render(message, status_code=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: s.ApprovalOutput(many=True)})
    @action(detail=True, methods=["get"], url_path="approvals")
    def approvals(self, request: Request, pk: str) -> Response:
        session = self._session()
        return self.render_page(selectors.approval_list_pending(session=session))

    def _decide(self, request: Request, approval_id: str, *, approve: bool) -> Response:
        session = self.get_object_or_404()
        approval = selectors.approval_get(session=session, approval_id=approval_id)
        approval = services.approval_decide(
            actor=request.user, approval=approval, approve=approve, request=request
        )
        return self.render(approval)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path=r"approvals/(?P<approval_id>[0-9]+)/approve")
    def approval_approve(self, request: Request, pk: str, approval_id: str) -> Response:
        return self._decide(request, approval_id, approve=True)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path=r"approvals/(?P<approval_id>[0-9]+)/deny")
    def approval_deny(self, request: Request, pk: str, approval_id: str) -> Response:
        return self._decide(request, approval_id, approve=False)

    @extend_schema(parameters=[s.EventsQuery])
    @action(detail=True, methods=["get"], url_path="events")
    def events(self, request: Request, pk: str) -> Response:
        session = self._session()
        query = self.validated_query(s.EventsQuery, request)
        frames = selectors.frames_after(
            session_id=session.pk, after_seq=query["after_seq"], limit=query["limit"]
        )
        return self.render({"last_seq": session.last_seq, "results": frames})
