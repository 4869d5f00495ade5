"""REST transport of the accounts app: serializers, viewsets, urls."""
