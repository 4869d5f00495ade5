"""`GET /api/v1/nodes/{node_id}/stats/`: the node's downsampled stats over the last hour."""

from __future__ import annotations

from django.urls import URLPattern, path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from cortex.api.viewsets import CortexViewSet
from mesh import selectors


class StatsSampleOutput(serializers.Serializer):
    at = serializers.DateTimeField(source="taken_at", read_only=True)
    cpu_percent = serializers.FloatField(read_only=True)
    memory_percent = serializers.FloatField(read_only=True)
    memory_used = serializers.IntegerField(read_only=True)
    memory_total = serializers.IntegerField(read_only=True)
    active_tasks = serializers.IntegerField(read_only=True)


class NodeStatsHistoryOutput(serializers.Serializer):
    node_id = serializers.CharField(read_only=True)
    interval_seconds = serializers.IntegerField(read_only=True)
    window_seconds = serializers.IntegerField(read_only=True)
    samples = StatsSampleOutput(many=True, read_only=True)


class NodeStatsViewSet(CortexViewSet):
    """One sample per interval (the first heartbeat of it), oldest first; 404 outside grants."""

    selector = staticmethod(selectors.node_list_for_user)
    output_serializer = NodeStatsHistoryOutput
    lookup_field = "node_id"

    def retrieve(self, request: Request, node_id: str) -> Response:
        return self.render(selectors.stats_history(user=request.user, node_id=node_id))


urlpatterns: list[URLPattern] = [
    path(
        "nodes/<slug:node_id>/stats/",
        NodeStatsViewSet.as_view({"get": "retrieve"}),
        name="node-stats",
    ),
]
