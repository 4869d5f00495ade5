"""REST transport of the sessions_app app: serializers, viewsets, urls."""
