"""Read-side queries of the sessions_app app."""
