"""Models of the sessions_app app, one module per aggregate."""
