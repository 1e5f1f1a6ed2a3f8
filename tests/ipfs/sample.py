"""Deterministic sample files for CID vectors: the same bytes on every machine.

The bytes of size N are the first N bytes of sha256(b"enerdatx" + k as 8 bytes big-endian)
for k = 0, 1, 2, ... concatenated (docs/content-addressing.md), so no chunk repeats.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 262144
# Every chunk and fan-out boundary of kubo's balanced layout the issue names.
PARITY_SIZES = {
    "empty": 0,
    "one-byte": 1,
    "chunk-minus-one": CHUNK - 1,
    "one-chunk": CHUNK,
    "chunk-plus-one": CHUNK + 1,
    "174-chunks": 174 * CHUNK,
    "174-chunks-plus-one": 174 * CHUNK + 1,
    "10-mib-plus-7": 10 * 2**20 + 7,
}


def sample_bytes(size: int) -> bytes:
    """The vector bytes of ``size`` (see the module docstring)."""
    blocks = (hashlib.sha256(b"enerdatx" + k.to_bytes(8, "big")).digest() for k in range(-(-size // 32)))
    return b"".join(blocks)[:size]


def write_sample(directory: Path, size: int) -> Path:
    """Write ``sample_bytes(size)`` to a file in ``directory`` and return its path."""
    path = directory / f"sample-{size}.bin"
    path.write_bytes(sample_bytes(size))
    return path
