"""Builders and stand-ins shared by several test packages (import them from here, not from a conftest)."""
