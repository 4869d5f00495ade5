"""Django admin for mesh."""
