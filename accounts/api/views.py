"""REST viewsets of the accounts app."""

from __future__ import annotations

from rest_framework import mixins

from accounts import selectors
from accounts.api.filters import AuditEventFilter
from accounts.api.serializers import AuditEventOutput
from cortex.api.viewsets import CortexViewSet, IsStaff


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CortexViewSet):
    """The audit log, read-only, for admins."""

    permission_classes = [IsStaff]
    selector = staticmethod(selectors.audit_list)
    output_serializer = AuditEventOutput
    filterset_class = AuditEventFilter
