"""Text checks that every layer shares."""

from __future__ import annotations

__all__ = ["is_utf8"]


def is_utf8(text: str) -> bool:
    """False for text that UTF-8 cannot encode: a lone surrogate, as JSON's "\\udcff" gives, or
    as Python hands on the bytes of a command-line argument that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
