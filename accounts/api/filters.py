"""Query filters of the accounts API."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from accounts import selectors
from accounts.models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    # Bounded to the id range: a huge number overflowed in the database (500, found by fuzzing).
    actor = django_filters.NumberFilter(field_name="actor_id", min_value=1, max_value=2**63 - 1)
    action = django_filters.CharFilter(
        field_name="action", lookup_expr="startswith", help_text="Action prefix, e.g. `auth.`"
    )
    actor_email = django_filters.CharFilter(
        field_name="actor_label", lookup_expr="icontains", help_text="Part of the actor's email."
    )
    node = django_filters.CharFilter(
        method="filter_node", max_length=63, help_text="Events about this node (by node id)."
    )
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    def filter_node(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> Any:
        return selectors.audit_about_node(queryset=queryset, node_id=value)

    class Meta:
        model = AuditEvent
        fields: list[str] = []
