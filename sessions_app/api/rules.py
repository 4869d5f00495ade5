"""`/api/v1/approval-rules/`: the caller's standing "always allow" rules, listed and revoked."""

from __future__ import annotations

from typing import Any

from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.selectors import user_signed_in
from cortex.api.viewsets import CortexViewSet
from sessions_app import selectors
from sessions_app.services import approval_rules


class ApprovalRuleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.SerializerMethodField(
        help_text='"session" (one chat) or "me" (every chat).'
    )
    session_id = serializers.IntegerField(allow_null=True)
    session_title = serializers.SerializerMethodField()
    node_id = serializers.CharField(source="node.node_id")
    tool = serializers.CharField(source="tool_name")
    command_patterns = serializers.ListField(child=serializers.CharField())
    action = serializers.CharField()
    use_count = serializers.IntegerField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_scope(self, obj: Any) -> str:
        return "session" if obj.session_id else "me"

    def get_session_title(self, obj: Any) -> str | None:
        if not obj.session_id:
            return None
        return obj.session.title or f"Chat {obj.session_id}"


class ApprovalRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CortexViewSet):
    """List, read and revoke; rules are made by answering an approval with `remember`."""

    selector = staticmethod(selectors.approval_rule_list_for_user)
    output_serializer = ApprovalRuleOutput

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.render_page(self.get_queryset())

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.render(self.get_object_or_404())

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        approval_rules.approval_rule_delete(
            actor=user_signed_in(user=request.user),
            rule=self.get_object_or_404(),
            audit_context=self.audit_context,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
