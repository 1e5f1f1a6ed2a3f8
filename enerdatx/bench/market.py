"""Market trades per second and latency from bid to verified data, against bare TrustChain transactions.

Half the peers sell one data set each, the other half buy, each buyer running its trades
one after the other, ``--concurrency`` trades in flight at once. The baseline, in the same
run, is the same number of bare countersigned TrustChain transactions between the same
pairs, run after the trades (so on chains that much longer). Before the load, one extra
buyer trades alone for the unloaded latency, against its own bare baseline. Transports:
in-memory IPv8 in one process, real UDP on 127.0.0.1 in one process, or UDP between two
processes (sellers in a child process, buyers in this one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from enerdatx.bench.filesystem import file_create_us
from enerdatx.bench.stats import percentile_ms as ms

if TYPE_CHECKING:
    from enerdatx.lab import Transport
from enerdatx.bench.limits import MAX_LOCAL_WORKERS, count, require_memory, workers
from enerdatx.conditions import wait_within
from enerdatx.errors import ConfigurationError, EnerDatXError

BASELINE_TYPE = "edx.bench.bare"
PRICE = 5


# What one Dask worker process holds before its peers start (interpreter, distributed, IPv8).
WORKER_BYTES = 200 * 2**20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench market``."""
    parser.add_argument("--peers", type=count(2, 5_000), default=100, help="peers (half sell, half buy)")
    parser.add_argument("--trades", type=count(1, 1_000_000), default=2000, help="trades to settle")
    parser.add_argument("--transport", choices=("memory", "udp", "udp2"), default="memory",
                        help="in-memory IPv8; UDP on 127.0.0.1; or UDP between two processes (udp2)")
    parser.add_argument("--days", type=count(1, 366), default=1, help="days of 15-minute readings per data set")
    parser.add_argument("--gossip-fanout", type=count(1, 64), default=None,
                        help="TrustChain gossip fanout and witnesses (default: the network's defaults)")
    parser.add_argument("--concurrency", type=count(1, 1_000), default=10,
                        help="trades in flight at once (each buyer trades one at a time; default 10)")
    parser.add_argument("--solo-trades", type=count(0, 10_000), default=50,
                        help="trades of one extra buyer alone before the load, for the unloaded latency")
    parser.add_argument("--workers", type=workers, default=0,
                        help="also run the market scenario on N Dask worker processes (UDP), beside one process "
                             f"(at most {MAX_LOCAL_WORKERS} here: 4 per CPU)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    sellers_n = args.peers // 2
    buyers_n = args.peers - sellers_n
    if sellers_n < 1 or args.trades < 1 or args.concurrency < 1:
        raise ConfigurationError("bench market needs at least 2 peers, 1 trade and a concurrency of 1")
    if args.trades > sellers_n * buyers_n:
        raise ConfigurationError(f"--trades {args.trades}: at most {sellers_n * buyers_n} distinct trades with "
                                 f"{args.peers} peers (each buyer buys each seller's listing once)")
    if args.workers:
        from enerdatx.bench import market_workers

        if args.workers > sellers_n:
            raise ConfigurationError(f"--workers {args.workers}: each worker needs a seller and a buyer; at most "
                                     f"{sellers_n} with {args.peers} peers")
        require_memory(args.workers, WORKER_BYTES, "Dask worker processes")

        return market_workers.run(args, _settings(args))
    return asyncio.run(_run(args, sellers_n, buyers_n))


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    # The benchmark floods peers on purpose: per-sender rate limits would only measure themselves.
    settings: dict[str, Any] = {"rate_per_second": 1e6, "rate_burst": 1_000_000}
    if args.gossip_fanout is not None:
        settings.update(gossip_fanout=args.gossip_fanout, witnesses=args.gossip_fanout)
    return settings


def _dataset(days: int) -> Any:
    from enerdatx.meter import cut_dataset, synthetic_household

    readings = synthetic_household(seed=1, days=days, location="2628")
    return cut_dataset(readings, resolution="15min", location="2628", household_type="family")


def _lab(directory: str, transport: Transport, n_trades_per_buyer: int, settings: dict[str, Any], progress: bool) -> Any:
    from enerdatx.lab import Lab
    from enerdatx.market.service import MarketService

    grant = n_trades_per_buyer * PRICE  # every buyer can afford its share
    return Lab(directory, transport, market=lambda: MarketService(grant=grant), progress=progress,
               durable=False, settings=settings)


async def _settle(lab: Any, services: list[Any], timeout: float = 60.0) -> None:
    """Warm-up: wait until every peer has asked its neighbours for their records and every
    answer has been read (on UDP the kernel still held a second of them: Lab.quiet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(service.community.unsynced for service in services) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    await lab.quiet(0.3, max(deadline - loop.time(), 1.0))


async def _run(args: argparse.Namespace, sellers_n: int, buyers_n: int) -> dict[str, Any]:
    progress = not args.no_progress
    solo = min(args.solo_trades, sellers_n)
    per_buyer = max(solo, -(-args.trades // buyers_n))
    # Distinct (buyer, listing) pairs, spread evenly over sellers.
    plan = [[(k // buyers_n + b) % sellers_n for k in range(b, args.trades, buyers_n)] for b in range(buyers_n)]
    dataset = _dataset(args.days)
    child = None
    with tempfile.TemporaryDirectory(prefix="enerdatx-bench-market-") as directory:
        transport: Transport = "udp" if args.transport == "udp2" else args.transport
        async with _lab(directory, transport, per_buyer, _settings(args), progress) as lab:
            if args.transport == "udp2":
                child, contacts, listing_ids = await _start_sellers(args, sellers_n, per_buyer)
                buyers = [peer.market for peer in await lab.start(buyers_n + 1)]
                for buyer in buyers:
                    buyer.peer.add_contacts(contacts)
                seller_keys = [key for key, _ in contacts]
            else:
                peers = await lab.start(args.peers + 1)
                lab.accept(BASELINE_TYPE)
                services = [peer.market for peer in peers]
                buyers = services[sellers_n:]
                listing_ids = [seller.sell(dataset, PRICE).listing_id for seller in services[:sellers_n]]
                seller_keys = [seller.public_key for seller in services[:sellers_n]]
            buyers, probe = buyers[:-1], buyers[-1]  # the probe trades alone, before the load
            for buyer in tqdm([*buyers, probe], desc="spreading listings", disable=not progress, leave=False):
                await buyer.market.book.wait_for(lambda book: len(book) >= len(listing_ids), timeout=120)
            await _settle(lab, [peer.market for peer in lab.peers])
            solo_latencies = [(await probe.buy(listing_ids[i])).seconds for i in range(solo)]
            solo_bare: list[float] = []
            for i in range(solo):
                t0 = time.perf_counter()
                await probe.peer.community.propose(seller_keys[i], BASELINE_TYPE, {"n": i})
                solo_bare.append(time.perf_counter() - t0)

            bar = tqdm(total=args.trades, desc="trades", disable=not progress, leave=False)
            trade_latencies: list[float] = []
            failures: list[str] = []
            in_flight = asyncio.Semaphore(args.concurrency)

            async def shop(buyer: Any, picks: list[int]) -> None:
                for i in picks:
                    async with in_flight:
                        try:
                            trade = await buyer.buy(listing_ids[i])
                        except EnerDatXError as exc:  # under overload: counted, not fatal
                            failures.append(f"{type(exc).__name__}: {exc}")
                            bar.update(1)
                            continue
                    if trade.plaintext != dataset.plaintext:
                        raise AssertionError("a trade delivered other data than was listed")
                    trade_latencies.append(trade.seconds)
                    bar.update(1)

            create_us = file_create_us(directory)  # outside the timed trades: see bench/filesystem.py
            start, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(shop(buyer, picks) for buyer, picks in zip(buyers, plan, strict=True)))
            trade_seconds, trade_cpu = time.perf_counter() - start, time.process_time() - cpu
            bar.close()

            bare_latencies: list[float] = []
            bare_failures: list[str] = []

            async def transact(buyer: Any, picks: list[int]) -> None:
                for i in picks:
                    async with in_flight:
                        t0 = time.perf_counter()
                        try:
                            await buyer.peer.community.propose(seller_keys[i], BASELINE_TYPE, {"n": i})
                        except EnerDatXError as exc:
                            bare_failures.append(f"{type(exc).__name__}: {exc}")
                            continue
                        bare_latencies.append(time.perf_counter() - t0)

            start, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(transact(buyer, picks) for buyer, picks in zip(buyers, plan, strict=True)))
            bare_seconds, bare_cpu = time.perf_counter() - start, time.process_time() - cpu
            # What the buyers' own chains say they paid: every settled trade moved exactly PRICE.
            tokens_paid = sum(buyer.balance().spent for buyer in [*buyers, probe])
            if child is not None:
                child.stdin.close()
                await child.wait()

    # Rates count completed trades only; failures are reported beside them.
    trades_per_s = len(trade_latencies) / trade_seconds
    bare_per_s = len(bare_latencies) / bare_seconds

    # No sample (--solo-trades 0, or every trade failed) has no quantile: ms() gives null, not a crash.
    return {
        "transport": args.transport,
        "gossip_fanout": args.gossip_fanout if args.gossip_fanout is not None else "default",
        "peers": args.peers,
        "sellers": sellers_n,
        "buyers": buyers_n,
        "concurrency": args.concurrency,
        "trades": args.trades,
        "failed_trades": len(failures),
        "failed_bare_tx": len(bare_failures),
        "tokens_paid": tokens_paid,
        "first_failure": next(iter(failures or bare_failures), None),
        "dataset_bytes": len(dataset.plaintext),
        "trades_per_s": round(trades_per_s, 1),
        "trade_latency_p50_ms": ms(trade_latencies, 0.50),
        "trade_latency_p99_ms": ms(trade_latencies, 0.99),
        "baseline_bare_tx_per_s": round(bare_per_s, 1),
        "baseline_bare_latency_p50_ms": ms(bare_latencies, 0.50),
        "baseline_bare_latency_p99_ms": ms(bare_latencies, 0.99),
        "trade_rate_vs_baseline": round(trades_per_s / bare_per_s, 3) if bare_per_s else None,
        # CPU time of this process (all peers, or the buyers' side with udp2): robust to a busy machine.
        "solo_trades": solo,
        "solo_trade_latency_p50_ms": ms(solo_latencies, 0.50),
        "solo_trade_latency_p99_ms": ms(solo_latencies, 0.99),
        "solo_baseline_bare_latency_p50_ms": ms(solo_bare, 0.50),
        "trade_cpu_ms_per_trade": round(1000 * trade_cpu / args.trades, 3),
        "baseline_cpu_ms_per_tx": round(1000 * bare_cpu / args.trades, 3),
        "file_create_us": create_us,
    }


async def _start_sellers(args: argparse.Namespace, sellers_n: int, per_buyer: int) -> tuple[Any, list, list[str]]:
    """Start the sellers in a child process; their contacts and listing ids come back on its stdout."""
    from ipv8.messaging.interfaces.udp.endpoint import UDPv4Address

    command = [sys.executable, "-m", "enerdatx.bench.market", "--sellers", str(sellers_n),
               "--per-buyer", str(per_buyer), "--days", str(args.days), "--settings", json.dumps(_settings(args))]
    child = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                 stdout=asyncio.subprocess.PIPE)
    line = await wait_within(child.stdout.readline(), 120)  # type: ignore[union-attr]
    if not line:
        raise RuntimeError("the seller process ended before it was ready")
    ready = json.loads(line)
    contacts = [(bytes.fromhex(key), UDPv4Address(host, port)) for key, host, port in ready["contacts"]]
    return child, contacts, ready["listings"]


async def _serve_sellers(sellers_n: int, per_buyer: int, days: int, settings: dict[str, Any]) -> None:
    """The child process: sellers on UDP that list one data set each, until stdin closes."""
    dataset = _dataset(days)
    with tempfile.TemporaryDirectory(prefix="enerdatx-bench-sellers-") as directory:
        async with _lab(directory, "udp", per_buyer, settings, False) as lab:
            sellers = [peer.market for peer in await lab.start(sellers_n)]
            lab.accept(BASELINE_TYPE)
            listings = [seller.sell(dataset, PRICE).listing_id for seller in sellers]
            contacts = [(s.public_key.hex(), *s.peer.address) for s in sellers]
            print(json.dumps({"contacts": contacts, "listings": listings}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(description="the seller process of `enerdatx bench market --transport udp2`")
    _parser.add_argument("--sellers", type=int, required=True)
    _parser.add_argument("--per-buyer", type=int, required=True)
    _parser.add_argument("--days", type=count(1, 366), default=1)
    _parser.add_argument("--settings", type=json.loads, default={})
    _args = _parser.parse_args()
    asyncio.run(_serve_sellers(_args.sellers, _args.per_buyer, _args.days, _args.settings))
