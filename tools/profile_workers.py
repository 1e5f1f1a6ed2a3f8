"""Sample the Dask workers of a market on ``Lab(workers=2)`` with py-spy (see docs/performance.md).

Usage: python tools/profile_workers.py [--peers 100 --trades 2500 --after 6 --seconds 8]

cProfile cannot follow peers into worker processes; py-spy samples a running process from
outside (``pip install py-spy``; it is a developer's tool, not a dependency). The script starts
the market scenario on two local workers, waits ``--after`` seconds (start-up and the first
trades), records each worker for ``--seconds`` at 200 samples a second, and prints per worker
the functions that own the most samples, with and without their callees.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    """Run the market on two workers, sample them, print where their time went."""
    from enerdatx.cluster import DaskLab, scenarios

    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=100)
    parser.add_argument("--trades", type=int, default=2500)
    parser.add_argument("--after", type=float, default=6.0)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        raise SystemExit("tools/profile_workers.py: needs py-spy (pip install py-spy)")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        with DaskLab(out / "dask", "udp", workers=2, durable=False) as lab:
            pids = list(lab.client.run(os.getpid).values())
            sampler = threading.Thread(target=_sample, args=(pids, out, args.after, args.seconds))
            sampler.start()
            figures = scenarios.market(lab, peers=args.peers, trades=args.trades, concurrency=10, days=1).figures
            sampler.join()
        print({key: figures[key] for key in ("trades_per_s", "trade_latency_p50_ms", "cpu_ms_per_trade")})
        for i in range(len(pids)):
            _report(out / f"worker{i}.txt")


def _sample(pids: list[int], out: Path, after: float, seconds: int) -> None:
    time.sleep(after)
    recorders = [
        subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
                          "--format", "raw", "--output", str(out / f"worker{i}.txt"), "--nonblocking"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i, pid in enumerate(pids)
    ]
    for recorder in recorders:
        recorder.wait()


def _report(path: Path, top: int = 25) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")[1:]]  # no line numbers
        if frames:
            own[frames[-1]] += samples
        for frame in set(frames):  # a recursive frame counts once
            inclusive[frame] += samples
    print(f"\n{path.name}: {total} samples")
    for title, counter in (("own", own), ("with callees", inclusive)):
        print(f"  -- {title}")
        for frame, samples in counter.most_common(top):
            print(f"  {samples / total:6.1%}  {frame}")


if __name__ == "__main__":  # Dask's worker processes import this module again
    main()
