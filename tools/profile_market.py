"""Profile the trading phase of `enerdatx bench market` with cProfile (see docs/performance.md).

Usage: python tools/profile_market.py OUT.prof [--peers 100 --trades 500 ...]

Only the timed phases are profiled (the trades, then the bare-ledger baseline), not the
start-up and the spreading of listings: the benchmark reads ``time.process_time()`` at the
start and end of each phase, and this script turns the profiler on and off there.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
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


if __name__ == "__main__":
    main()
