"""REST transport of the tools app: serializers, viewsets, urls."""
