"""LLM, TTS and STT providers with layered defaults and encrypted, masked secrets."""
