"""Models of the mesh app, one module per aggregate."""
