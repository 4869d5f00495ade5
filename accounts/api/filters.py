"""Query filters of the accounts API."""

from __future__ import annotations

import django_filters

from accounts.models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    # Bounded to the id range: a huge number overflowed in the database (500, found by fuzzing).
    actor = django_filters.NumberFilter(field_name="actor_id", min_value=1, max_value=2**63 - 1)
    action = django_filters.CharFilter(
        field_name="action", lookup_expr="startswith", help_text="Action prefix, e.g. `auth.`"
    )
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
