"""Write services of the tools app."""
