"""Profile the trading phase of `enerdatx bench market` with cProfile (see docs/performance.md).

Usage: python tools/profile_market.py OUT.prof [--peers 100 --trades 500 ...]

Only the timed phases are profiled (the trades, then the bare-ledger baseline), not the
start-up and the spreading of listings: the benchmark reads ``time.process_time()`` at the
start and end of each phase, and this script turns the profiler on and off there.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import sys
import time
import types

from enerdatx.bench import market


def main() -> None:
    """Run the benchmark under the profiler and print the top functions."""
    out, *rest = sys.argv[1:] or ["market.prof"]
    parser = argparse.ArgumentParser()
    market.add_arguments(parser)
    args = parser.parse_args(rest or ["--peers", "100", "--trades", "500", "--solo-trades", "10"])
    args.no_progress = True
    profilers = [cProfile.Profile(), cProfile.Profile()]  # trades, bare baseline
    calls = 0

    def process_time() -> float:
        nonlocal calls
        phase, edge = divmod(calls, 2)
        calls += 1
        if phase < len(profilers):
            (profilers[phase].enable if edge == 0 else profilers[phase].disable)()
        return time.process_time()

    market.time = types.SimpleNamespace(perf_counter=time.perf_counter, process_time=process_time)  # type: ignore[attr-defined]
    result = market.run(args)
    print({k: result[k] for k in ("trades", "trades_per_s", "trade_latency_p50_ms", "baseline_bare_tx_per_s",
                                  "trade_cpu_ms_per_trade", "baseline_cpu_ms_per_tx")})
    profilers[0].dump_stats(out)
    profilers[1].dump_stats(out + ".bare")
    for order in ("cumulative", "tottime"):
        print(f"\n=== trades phase, by {order} ===")
        pstats.Stats(out).sort_stats(order).print_stats(30)
    print("\n=== trades phase, markdown (docs/performance.md) ===")
    print(markdown(out, "tottime", 14), markdown(out, "cumulative", 60, only=("enerdatx", "ipv8")), sep="\n\n")


def markdown(path: str, order: str, count: int, only: tuple[str, ...] = ()) -> str:
    """The top ``count`` functions of a profile as a markdown table (optionally only some modules)."""
    text = io.StringIO()
    pstats.Stats(path, stream=text).sort_stats(order).print_stats(count)
    rows = ["| function | calls | own s | cumulative s |", "| --- | --- | --- | --- |"]
    for line in text.getvalue().splitlines():
        match = re.match(r"\s*([\d/]+)\s+([\d.]+)\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+(.*)", line)
        if match and (not only or any(name in match[4] for name in only)):
            name = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", match[4])
            name = re.sub(r"^/\S*?/(?=enerdatx/)", "", name)
            rows.append(f"| {name} | {match[1]} | {match[2]} | {match[3]} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
