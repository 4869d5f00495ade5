"""Read-side queries of the tools app."""
