"""Django admin for preferences."""
