"""Refuse a benchmark that cannot fit in this machine's memory before it starts, not after an hour."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

__all__ = ["available_memory", "count", "require_memory"]


def count(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number from ``low`` to ``high``: a benchmark given 0, -1 or a
    thousand-digit number says so at once instead of dividing by zero or running for days."""

    def parse(text: str) -> int:
        digits = text.strip().removeprefix("-")
        if not (digits.isascii() and digits.isdigit()) or len(digits.lstrip("0")) > len(str(high)) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low:,} to {high:,}, got {text!r}")
        return int(text)

    return parse


def available_memory() -> int | None:
    """Bytes of memory available now (None where the system does not say)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def require_memory(count: int, bytes_each: int, what: str) -> None:
    """Raise ValueError when ``count`` items of ``bytes_each`` would not fit in the available memory."""
    available = available_memory()
    needed = count * bytes_each
    if available is not None and needed > available:
        raise ValueError(
            f"{count:,} {what} need about {needed / 2**30:,.1f} GiB (about {bytes_each / 1024:,.0f} KiB each), "
            f"but {available / 2**30:,.1f} GiB are available"
        )
