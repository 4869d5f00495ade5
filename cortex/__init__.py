"""Cortex Hub: the Django project package (settings, routing, shared base classes)."""
