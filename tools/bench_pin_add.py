"""CPU per ``EmbeddedStore.add_bytes`` of a 3.6 kB ciphertext, on an empty store and after 2,000 pins.

Usage: python tools/bench_pin_add.py LABEL (see docs/performance.md, "Round 3").
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from enerdatx.ipfs import EmbeddedStore

ADDS = 500


def main() -> None:
    """Print the CPU milliseconds per add for each number of pins already in the store."""
    label = sys.argv[1] if len(sys.argv) > 1 else "run"
    for prior in (0, 2000):
        with tempfile.TemporaryDirectory() as directory:
            store = EmbeddedStore(directory)
            for _ in range(prior):
                store.add_bytes(os.urandom(64))
            data = [os.urandom(3603) for _ in range(ADDS)]
            start = time.process_time()
            for item in data:
                store.add_bytes(item)
            print(f"{label} prior_pins={prior} cpu_ms_per_add={(time.process_time() - start) / ADDS * 1000:.3f}")


if __name__ == "__main__":
    main()
