"""Input and output serializers of the accounts API."""

from __future__ import annotations

from rest_framework import serializers


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    actor = serializers.IntegerField(source="actor_id", allow_null=True, read_only=True)
    actor_label = serializers.CharField(read_only=True)
    action = serializers.CharField(read_only=True)
    target_type = serializers.CharField(read_only=True)
    target_id = serializers.CharField(read_only=True)
    source = serializers.CharField(read_only=True)
    client_ip = serializers.IPAddressField(allow_null=True, read_only=True)
    user_agent = serializers.CharField(read_only=True)
    details = serializers.DictField(read_only=True)
