"""Django admin for sessions_app."""
