"""OPTIONS answers for every API view, without touching serializers, objects or the database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.metadata import BaseMetadata
from rest_framework.renderers import JSONRenderer

if TYPE_CHECKING:  # DRF imports this module while `rest_framework.views` loads
    from rest_framework.request import Request
    from rest_framework.views import APIView


class CortexMetadata(BaseMetadata):
    """Name, description and media types; the `Allow` header lists the methods.

    DRF's `SimpleMetadata` builds a serializer (and may load the object) for each writable
    method, which fails on viewsets that pick serializers per action or take other URL keywords
    than `pk`: OPTIONS answered 500 on several routes. The OpenAPI schema describes the bodies.
    """

    def determine_metadata(self, request: Request, view: APIView) -> dict[str, Any]:
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }


def options_as_json(request: Request) -> None:
    """Render an OPTIONS answer as JSON on a view whose renderers are HTML templates."""
    request.accepted_renderer = JSONRenderer()
    request.accepted_media_type = JSONRenderer.media_type
