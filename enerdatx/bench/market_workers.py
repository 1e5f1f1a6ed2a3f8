"""``enerdatx bench market --workers N``: the market scenario on N Dask workers, beside one process.

Both runs are :func:`enerdatx.cluster.scenarios.market` with the same peers, trades, concurrency
and TrustChain settings, over UDP on 127.0.0.1: first in this process (the baseline), then with
the peers spread over ``Lab(workers=N)``'s worker processes. Latency is from the bid to the
verified data, as in the single-process benchmark; trades/s counts completed trades over the
span from the first bid to the last delivery across all workers.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from typing import Any

from enerdatx.bench.filesystem import file_create_us

PREFIXES = ("single_process", "workers")


def run(args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    """Run the market in one process and on ``args.workers`` workers; both figures side by side."""
    from enerdatx.cluster import DaskLab, scenarios
    from enerdatx.lab import Lab

    logging.getLogger("distributed").setLevel(logging.ERROR)
    trades = min(args.trades, (args.peers // 2) * (args.peers - args.peers // 2))
    options = dict(peers=args.peers, trades=trades, concurrency=args.concurrency, days=args.days)
    result: dict[str, Any] = {"peers": args.peers, "trades": trades, "concurrency": args.concurrency,
                              "transport": "udp", "workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="enerdatx-bench-market-") as directory:
        # The cost of a new file where the peers keep their data, before each run (bench/filesystem.py).
        result["single_process_file_create_us"] = file_create_us(directory)
        with Lab(directory, "udp", durable=False, settings=settings, progress=False) as lab:
            single = scenarios.market(lab, **options).figures
        result["workers_file_create_us"] = file_create_us(directory)
        with DaskLab(f"{directory}/dask", "udp", workers=args.workers, durable=False, settings=settings) as lab:
            # While the cluster is up: a link printed with the figures would lead nowhere.
            print(f"Dask dashboard, while the workers run: {lab.dashboard_link}", file=sys.stderr, flush=True)
            spread = scenarios.market(lab, **options).figures
    for prefix, figures in zip(PREFIXES, (single, spread), strict=True):
        for key in ("trades_per_s", "trade_latency_p50_ms", "trade_latency_p99_ms", "cpu_ms_per_trade", "failed_trades"):
            result[f"{prefix}_{key}"] = figures[key]
    result["workers_vs_single_process"] = (
        round(spread["trades_per_s"] / single["trades_per_s"], 3) if single["trades_per_s"] else None
    )
    return result
