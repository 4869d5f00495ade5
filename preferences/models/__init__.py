"""Models of the preferences app, one module per aggregate."""
