"""Models of the preferences app, one module per aggregate."""

from preferences.models.layer import Kind, PreferenceLayer, Scope

__all__ = ["Kind", "PreferenceLayer", "Scope"]
