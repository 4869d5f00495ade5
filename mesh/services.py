"""Write services of the mesh app."""
