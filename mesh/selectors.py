"""Read-side queries of the mesh app."""
