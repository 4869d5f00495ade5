"""Local providers that need no network: espeak-ng (tts) and pocketsphinx (stt)."""
