"""Django admin for tools."""
