"""Read-side queries of the preferences app."""
