"""Refuse a benchmark that cannot fit in this machine's memory before it starts, not after an hour."""

from __future__ import annotations

import argparse
import math
import os
import resource
from collections.abc import Callable

__all__ = [
    "FULL_PEER_BYTES", "FULL_PEER_FILES", "LIGHT_PEER_BYTES", "MAX_LOCAL_WORKERS", "WORKERS_PER_CPU",
    "available_memory", "count", "require_files", "require_memory", "workers",
]

# Worker processes a local cluster may have: more than a few per core only queue for the CPU, and
# hundreds exhaust the machine before Dask says why ("Nanny failed to start").
WORKERS_PER_CPU = 4
MAX_LOCAL_WORKERS = WORKERS_PER_CPU * (os.cpu_count() or 1)

# Resident memory per peer, rounded up from `memory_per_peer_bytes` of `bench fraud` (94 KB light,
# 234 KB full): a number of peers that cannot fit is refused before the first one starts.
LIGHT_PEER_BYTES = 128 * 1024
FULL_PEER_BYTES = 512 * 1024

# Open files per peer with a directory: chain.sqlite and market.sqlite (each with its -wal and
# -shm), peer.lock, the directory's own lock and, on UDP, the socket: 8 on the in-memory
# transport and 9 on UDP, counted in /proc/self/fd; one more for a content-store add in flight.
FULL_PEER_FILES = 10


def count(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number from ``low`` to ``high``: a benchmark given 0, -1 or a
    thousand-digit number says so at once instead of dividing by zero or running for days."""

    def parse(text: str) -> int:
        digits = text.strip().removeprefix("-")
        if not (digits.isascii() and digits.isdigit()) or len(digits.lstrip("0")) > len(str(high)) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low:,} to {high:,}, got {text!r}")
        return int(text)

    return parse


def share(text: str) -> float:
    """An argparse ``type`` for a share of packets, from 0 up to but not including 1 (``nan`` is none)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share from 0 up to 1 (not 1 itself), e.g. 0.2, got {text!r}")
    return value + 0.0  # -0.0 is no loss: report 0.0


def workers(text: str) -> int:
    """An argparse ``type`` for ``--workers N`` (0: none, in one process): at most
    :data:`MAX_LOCAL_WORKERS`, refused when the options are read, not after a run has started."""
    try:
        return count(0, MAX_LOCAL_WORKERS)(text)
    except argparse.ArgumentTypeError:
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise
        given = f", not {digits}" if len(digits) <= 12 else ""
        raise argparse.ArgumentTypeError(
            f"at most {MAX_LOCAL_WORKERS} on this machine ({WORKERS_PER_CPU} per CPU){given}"
        ) from None


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


def _open_files() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # no /proc (macOS): the limit alone is checked
        return None


def require_files(count: int, files_each: int, what: str) -> None:
    """Raise ValueError when ``count`` more items of ``files_each`` open files would pass this
    process's limit (``ulimit -n``), after raising its soft limit as far as the hard one allows.

    2,200 peers opened the 20,000 files allowed here; the next one failed deep in sqlite3
    ("unable to open database file") or in a socket, half-started.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = (_open_files() or 0) + count * files_each
    if soft != resource.RLIM_INFINITY and needed > soft and (hard == resource.RLIM_INFINITY or hard > soft):
        raised = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass  # keep the soft limit; the check below says what is missing
    if soft != resource.RLIM_INFINITY and needed > soft:
        raise ValueError(
            f"{count:,} {what} need about {count * files_each:,} open files (about {files_each} each), but this "
            f"process may open {soft:,} (ulimit -n) and has {needed - count * files_each:,} open: start fewer, "
            f"raise the limit, or spread them over Dask workers (Lab(workers=N))"
        )
