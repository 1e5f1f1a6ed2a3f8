"""Sample the trading phase of `enerdatx bench market` with py-spy (see docs/performance.md, round 4).

Usage: python tools/sample_market.py OUT.txt [--peers 100 --trades 2000 ...]
       python tools/sample_market.py --summary OUT.txt

cProfile charges every Python call a fixed overhead, so it inflates functions that make many
small calls (a 3.5 µs check showed as 28 µs). py-spy samples the stack instead. It is a separate
tool (``pip install py-spy``), not a dependency of the project. The sampler is attached when the
benchmark reads ``time.process_time()`` to start the trades and is stopped when it reads it again
at their end, so only the trades are sampled. ``--summary`` prints the functions by their own
samples and by the samples under them (collapsed-stack "raw" format).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import time
import types


def sample(out: str, rest: list[str]) -> None:
    """Run the benchmark in this process, with py-spy attached during the trades."""
    from enerdatx.bench import market

    sampler: subprocess.Popen[bytes] | None = None
    reads = 0

    def process_time() -> float:
        nonlocal sampler, reads
        reads += 1
        if reads == 1:
            sampler = subprocess.Popen(
                ["py-spy", "record", "-r", "100", "-f", "raw", "-o", out, "--nonblocking", "--pid", str(os.getpid())],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attaches before the first trade
        elif reads == 2 and sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait()
        return time.process_time()

    market.time = types.SimpleNamespace(perf_counter=time.perf_counter, process_time=process_time)  # type: ignore[assignment]
    parser = argparse.ArgumentParser()
    market.add_arguments(parser)
    args = parser.parse_args(rest or ["--peers", "100", "--trades", "2000", "--solo-trades", "10"])
    args.no_progress = True
    figures = market.run(args)
    print({key: figures[key] for key in ("trades_per_s", "trade_cpu_ms_per_trade", "trade_latency_p50_ms")})
    summarize(out)


def summarize(path: str, top: int = 30) -> None:
    """Print the top functions by own samples, then the project's functions by inclusive samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():  # a source line py-spy prints with some frames
                continue
            frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
    print(f"samples: {total}\n\n| own % | function |\n| --- | --- |")
    for name, count in own.most_common(top):
        print(f"| {100 * count / total:.1f} | {name} |")
    print("\n| inclusive % | function |\n| --- | --- |")
    for name, count in [item for item in inclusive.most_common() if "enerdatx/" in item[0]][:top]:
        print(f"| {100 * count / total:.1f} | {name} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        summarize(sys.argv[2])
    else:
        out, *rest = sys.argv[1:] or ["market-samples.txt"]
        sample(out, rest)
