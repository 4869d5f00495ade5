"""Anthropic provider: backends.py (parameters, verify), chat.py (streaming chat)."""
