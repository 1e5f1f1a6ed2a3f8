"""What creating a file costs where a benchmark's peers keep their data, measured in the same run.

Every data set a buyer fetches becomes a new file in its embedded IPFS store
(``Blockstore.put``: write a temporary file, rename it into place). On most file systems that
costs tens of microseconds. On ext4 without a journal (this project's CI machine: "mounted
filesystem without journal"), the kernel's inode allocator skips inodes deleted in the last 60
to 360 seconds, so after many files were deleted (the previous benchmark's or test suite's
temporary directories) each new file costs up to a millisecond of CPU for minutes
(docs/performance.md, round 12). Reported beside a benchmark's figures, this says which of the
two states its run saw.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

__all__ = ["file_create_us"]

PROBE_BYTES = 4096  # about a one-day data set's ciphertext


def file_create_us(directory: str | os.PathLike[str], samples: int = 100) -> float:
    """Median microseconds to create, write and rename a file into place in ``directory``.

    The probe files stay (in a ``file-create-probe`` folder) and go with the directory: deleting
    them here would itself slow down the next files made.
    """
    folder = Path(directory, "file-create-probe")
    folder.mkdir(exist_ok=True)
    page = bytes(PROBE_BYTES)
    start = len(os.listdir(folder))
    times: list[float] = []
    for n in range(start, start + samples):
        temp, final = folder / f".tmp-{n}", folder / f"{n}"
        began = time.perf_counter()
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, page)
        finally:
            os.close(fd)
        os.replace(temp, final)
        times.append(time.perf_counter() - began)
    return round(statistics.median(times) * 1e6, 1)
