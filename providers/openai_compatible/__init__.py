"""OpenAI-compatible provider: backends.py (parameters, verify, speech, transcription), chat.py."""
