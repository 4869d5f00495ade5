"""Input and output shapes of the workspace REST API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class WorkspaceUpdateInput(serializers.Serializer):
    source = serializers.ChoiceField(choices=("none", "hub", "node"))  # type: ignore[assignment]  # the API field is "source"
    node_id = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=64
    )
    # Checked by the one path rule in the service, not here (so its codes are the same everywhere).
    path = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False, max_length=8192
    )


class WorkspaceResolveInput(serializers.Serializer):
    node_id = serializers.CharField(max_length=64)
    action = serializers.ChoiceField(choices=("keep", "promote"))
    paths = serializers.ListField(
        child=serializers.CharField(max_length=4096, trim_whitespace=False),
        required=False,
        allow_null=True,
        max_length=10000,
    )


class WorkspaceNodeOutput(serializers.Serializer):
    node_id = serializers.CharField(source="node.node_id")
    state = serializers.CharField()
    pending = serializers.IntegerField()
    drift = serializers.JSONField()


class WorkspaceOutput(serializers.Serializer):
    source = serializers.CharField()  # type: ignore[assignment]  # the API field is "source"
    node_id = serializers.SerializerMethodField()
    path = serializers.CharField()
    nodes = serializers.SerializerMethodField()

    def get_node_id(self, obj: Any) -> str | None:
        return obj.lead_node.node_id if obj.lead_node_id else None

    def get_nodes(self, obj: Any) -> list[dict[str, Any]]:
        rows = self.context.get("nodes", [])
        return WorkspaceNodeOutput(rows, many=True).data  # type: ignore[return-value]


class EntryOutput(serializers.Serializer):
    path = serializers.CharField()
    kind = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField(allow_null=True)
    modified_at = serializers.DateTimeField(allow_null=True)


class FileOutput(serializers.Serializer):
    path = serializers.CharField()
    kind = serializers.SerializerMethodField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    modified_at = serializers.DateTimeField(source="mtime")

    def get_kind(self, obj: Any) -> str:
        return "file"
