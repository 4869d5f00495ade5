"""`POST /api/v1/nodes/{node_id}/policy/check/` (admins): judge a command against a node's
sandbox policy, or a draft of it, with the checker the hub and the node run."""

from __future__ import annotations

from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from cortex.api.viewsets import CortexViewSet, IsStaff
from mesh import selectors


class PolicyCheckInput(serializers.Serializer):
    command = serializers.CharField(max_length=16384, trim_whitespace=False)
    policy = serializers.DictField(
        required=False, help_text="A draft policy; the node's saved policy when left out."
    )


class PolicyCheckOutput(serializers.Serializer):
    allowed = serializers.BooleanField(read_only=True)
    sensitive = serializers.BooleanField(read_only=True, help_text="Needs a person's approval.")
    reason = serializers.CharField(read_only=True)
    offending = serializers.CharField(read_only=True)
    commands = serializers.ListField(child=serializers.CharField(), read_only=True)


class NodePolicyCheckViewSet(CortexViewSet):
    """The policy editor's "check a command" box (nothing runs, nothing is saved)."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.node_list_for_user)
    input_serializers = {"create": PolicyCheckInput}
    output_serializer = PolicyCheckOutput
    created_actions = frozenset()

    @extend_schema(request=PolicyCheckInput, responses={200: PolicyCheckOutput})
    def create(self, request: Request, node_id: str) -> Response:
        node = selectors.node_get_for_user(user=request.user, node_id=node_id)
        data = self.validated_input(request)
        verdict = selectors.policy_check(
            node=node, command=data["command"], policy=data.get("policy")
        )
        return self.render(verdict)


urlpatterns: list[URLPattern] = [
    path(
        "nodes/<slug:node_id>/policy/check/",
        NodePolicyCheckViewSet.as_view({"post": "create"}),
        name="node-policy-check",
    ),
]
