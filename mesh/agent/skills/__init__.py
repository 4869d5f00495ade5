"""The agent's skills: shell, files and (where Playwright and a browser exist) browser."""
