"""A parser that hands a raw YAML body to the import endpoint."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class YamlTextParser(BaseParser):
    """Returns the body as text; the service parses and validates the YAML itself."""

    media_type = "application/yaml"

    # The body stays text for the service (DRF's stubs expect a mapping from parsers).
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> str:  # type: ignore[override]
        try:
            return stream.read().decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("The body is not UTF-8 text.") from None


class YamlAltParser(YamlTextParser):
    media_type = "application/x-yaml"


class TextYamlParser(YamlTextParser):
    media_type = "text/yaml"
