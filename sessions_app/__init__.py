"""Chat sessions, messages and the LLM tool-calling turn."""
