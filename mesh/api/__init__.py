"""REST transport of the mesh app: serializers, viewsets, urls."""
