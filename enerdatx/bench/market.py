"""Market trades per second and latency from bid to verified data, against bare TrustChain transactions."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

from tqdm import tqdm

BASELINE_TYPE = "edx.bench.bare"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench market``."""
    parser.add_argument("--peers", type=int, default=100, help="peers (half sell, half buy)")
    parser.add_argument("--trades", type=int, default=2000, help="trades to settle")
    parser.add_argument("--transport", choices=("memory", "udp"), default="memory",
                        help="in-memory IPv8 endpoints, or real UDP sockets on 127.0.0.1")
    parser.add_argument("--days", type=int, default=1, help="days of 15-minute readings per data set")
    parser.add_argument("--gossip-fanout", type=int, default=None,
                        help="TrustChain gossip fanout and witnesses (default: the network's defaults)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    if args.peers < 2 or args.trades < 1:
        raise SystemExit("enerdatx bench market: need at least 2 peers and 1 trade")
    return asyncio.run(_run(args))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from enerdatx.lab import Lab
    from enerdatx.market.service import MarketService
    from enerdatx.meter import cut_dataset, synthetic_household

    progress = not args.no_progress
    sellers_n = args.peers // 2
    buyers_n = args.peers - sellers_n
    # Distinct (buyer, listing) pairs, spread evenly; every buyer can afford its share.
    if args.trades > sellers_n * buyers_n:
        raise SystemExit(f"at most {sellers_n * buyers_n} distinct trades with {args.peers} peers")
    per_buyer = -(-args.trades // buyers_n)
    price = 5
    grant = per_buyer * price
    with tempfile.TemporaryDirectory(prefix="enerdatx-bench-market-") as directory:
        # The benchmark floods peers on purpose: per-sender rate limits would only measure themselves.
        settings: dict[str, Any] = {"rate_per_second": 1e6, "rate_burst": 1_000_000}
        if args.gossip_fanout is not None:
            settings.update(gossip_fanout=args.gossip_fanout, witnesses=args.gossip_fanout)
        lab = Lab(directory, args.transport, services=lambda peer: [MarketService(grant=grant)],
                  progress=progress, durable=False, settings=settings)
        async with lab:
            peers = await lab.start(args.peers)
            lab.accept(BASELINE_TYPE)
            services = [peer.services[0] for peer in peers]
            sellers, buyers = services[:sellers_n], services[sellers_n:]
            readings = synthetic_household(seed=1, days=args.days, location="2628")
            dataset = cut_dataset(readings, resolution="15min", location="2628", household_type="family")
            listings = [seller.sell(dataset, price) for seller in sellers]
            for buyer in tqdm(buyers, desc="spreading listings", disable=not progress, leave=False):
                await buyer.market.book.wait_for(lambda book: len(book) >= len(listings), timeout=60)

            plan = [[] for _ in buyers]  # type: list[list[int]]
            for k in range(args.trades):
                b = k % buyers_n
                plan[b].append((k // buyers_n + b) % sellers_n)

            bar = tqdm(total=args.trades, desc="trades", disable=not progress, leave=False)
            trade_latencies: list[float] = []

            async def shop(buyer: Any, picks: list[int]) -> None:
                for i in picks:
                    trade = await buyer.buy(listings[i].listing_id)
                    trade_latencies.append(trade.seconds)
                    assert trade.plaintext == dataset.plaintext
                    bar.update(1)

            start = time.perf_counter()
            await asyncio.gather(*(shop(buyer, picks) for buyer, picks in zip(buyers, plan, strict=True)))
            trade_seconds = time.perf_counter() - start
            bar.close()

            # Baseline: the same number of bare countersigned transactions, same pairs, same concurrency.
            bare_latencies: list[float] = []

            async def transact(buyer: Any, picks: list[int]) -> None:
                for i in picks:
                    t0 = time.perf_counter()
                    await buyer.peer.community.propose(sellers[i].public_key, BASELINE_TYPE, {"n": i})
                    bare_latencies.append(time.perf_counter() - t0)

            start = time.perf_counter()
            await asyncio.gather(*(transact(buyer, picks) for buyer, picks in zip(buyers, plan, strict=True)))
            bare_seconds = time.perf_counter() - start

    return {
        "transport": args.transport,
        "gossip_fanout": args.gossip_fanout if args.gossip_fanout is not None else "default",
        "peers": args.peers,
        "sellers": sellers_n,
        "buyers": buyers_n,
        "concurrent_buyers": buyers_n,
        "trades": args.trades,
        "dataset_bytes": len(dataset.plaintext),
        "trades_per_s": round(args.trades / trade_seconds, 1),
        "trade_latency_p50_ms": round(1000 * _percentile(trade_latencies, 0.50), 2),
        "trade_latency_p99_ms": round(1000 * _percentile(trade_latencies, 0.99), 2),
        "baseline_bare_tx_per_s": round(args.trades / bare_seconds, 1),
        "baseline_bare_latency_p50_ms": round(1000 * _percentile(bare_latencies, 0.50), 2),
        "baseline_bare_latency_p99_ms": round(1000 * _percentile(bare_latencies, 0.99), 2),
        "trade_rate_vs_baseline": round((args.trades / trade_seconds) / (args.trades / bare_seconds), 3),
    }
