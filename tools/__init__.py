"""The plugin tool registry and the tools that act on nodes."""
