"""REST transport of the preferences app: serializers, viewsets, urls."""
