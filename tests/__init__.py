"""Project-wide test suites that span every app."""
