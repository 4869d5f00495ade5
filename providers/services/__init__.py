"""Provider work that needs no user: speaking, transcribing, keeping recordings.

Which backend a user gets is preferences' answer (preferences.services.voice).
"""
