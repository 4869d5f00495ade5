"""Models of the tools app, one module per aggregate."""
