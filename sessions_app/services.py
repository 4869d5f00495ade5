"""Write services of the sessions_app app."""
