"""The trust suite: what the hub refuses, proven over every route, group, secret and fault."""
