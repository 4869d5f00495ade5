"""Shared REST building blocks: the viewset base, error handling, pagination and schema hooks."""
