"""One module per tool; each registers itself with `@registry.register`."""
