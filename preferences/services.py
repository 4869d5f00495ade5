"""Write services of the preferences app."""
