"""Transaction latency and throughput between two peers, against a bare IPv8 signed round trip.

With ``--transport udp`` the counterparty runs in a second OS process (``enerdatx peer run``)
and packets cross the loopback interface; with ``memory`` both peers share one process and
pyipv8's in-memory endpoint. The baseline, measured in the same run between the same two
peers, is pyipv8's own introduction request and response: one signed message each way.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from enerdatx.bench.limits import count
from enerdatx.bench.stats import percentile
from enerdatx.conditions import wait_within
from enerdatx.lab import Lab, PeerProcess
from enerdatx.peer import Peer

BENCH_TYPE = "edx.bench.ping"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench network``."""
    parser.add_argument("--transport", choices=("udp", "memory"), default="udp")
    parser.add_argument("--transactions", type=count(1, 100_000), default=500, help="transactions per measurement")
    parser.add_argument("--concurrency", type=count(1, 1_000), default=16, help="proposals in flight for the throughput run")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    result: dict[str, Any] = {
        "transport": args.transport,
        "processes": 2 if args.transport == "udp" else 1,
        "transactions": args.transactions,
        "concurrency": args.concurrency,
    }
    # Both peers fsync the blocks they sign (the default), then neither does: the difference
    # is the disk's share of a transaction.
    for durable, suffix in ((True, ""), (False, "_no_fsync")):
        with tempfile.TemporaryDirectory(prefix="enerdatx-bench-network-") as directory:
            figures = asyncio.run(_run(Path(directory), args, durable=durable))
        result.update({f"{key}{suffix}": value for key, value in figures.items()})
    result["latency_over_baseline_p50"] = round(result["latency_ms_p50"] / result["baseline_ipv8_round_trip_ms_p50"], 2)
    return result


def _percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    return round(percentile(samples, 0.50) * 1000, 3), round(percentile(samples, 0.99) * 1000, 3)


async def _run(directory: Path, args: argparse.Namespace, *, durable: bool) -> dict[str, Any]:
    other: PeerProcess | None = None
    progress = not args.no_progress
    async with Lab(directory / "lab", transport=args.transport, durable=durable) as lab:
        lab.accept(BENCH_TYPE)
        address: tuple[str, int]  # a process's UDPv4Address or a lab peer's address
        if args.transport == "udp":
            other = PeerProcess(directory / "other", accept=[BENCH_TYPE], durable=durable)
            await other.start()
            (peer,) = await lab.start(1)
            peer.add_contacts([(other.public_key, other.address)])
            counterparty, address = other.public_key, other.address
        else:
            peer, second = await lab.start(2)
            counterparty, address = second.public_key, second.address
        try:
            baseline = await _ipv8_round_trips(peer, address, args.transactions, progress)
            latencies = await _sequential(peer, counterparty, args.transactions, progress)
            seconds = await _concurrent(peer, counterparty, args.transactions, args.concurrency, progress)
        finally:
            if other is not None:
                await other.stop()
    baseline_p50, baseline_p99 = _percentiles(baseline)
    p50, p99 = _percentiles(latencies)
    return {
        "latency_ms_p50": p50,
        "latency_ms_p99": p99,
        "baseline_ipv8_round_trip_ms_p50": baseline_p50,
        "baseline_ipv8_round_trip_ms_p99": baseline_p99,
        "throughput_tx_per_s": round(args.transactions / seconds, 1),
        "sequential_tx_per_s": round(len(latencies) / sum(latencies), 1),
    }


async def _ipv8_round_trips(peer: Peer, address: Any, count: int, progress: bool) -> list[float]:
    """Seconds per introduction request -> response (signed both ways) with the other peer."""
    community = peer.community
    callback = community.introduction_response_callback
    answered: asyncio.Future[None] | None = None

    def on_response(*args: Any) -> None:
        callback(*args)
        if answered is not None and not answered.done():
            answered.set_result(None)

    community.introduction_response_callback = on_response  # type: ignore[method-assign, assignment]
    samples = []
    try:
        for _ in tqdm(range(count), desc="ipv8 round trips", disable=None if progress else True, leave=False):
            answered = asyncio.get_running_loop().create_future()
            start = time.perf_counter()
            community.walk_to(address)
            await wait_within(answered, 5)
            samples.append(time.perf_counter() - start)
    finally:
        community.introduction_response_callback = callback  # type: ignore[method-assign]
    return samples


async def _sequential(peer: Peer, counterparty: bytes, count: int, progress: bool) -> list[float]:
    samples = []
    for n in tqdm(range(count), desc="transactions", disable=None if progress else True, leave=False):
        start = time.perf_counter()
        await peer.community.propose(counterparty, BENCH_TYPE, {"n": n})
        samples.append(time.perf_counter() - start)
    return samples


async def _concurrent(peer: Peer, counterparty: bytes, count: int, concurrency: int, progress: bool) -> float:
    """Seconds for ``count`` transactions with ``concurrency`` proposals in flight."""
    slots = asyncio.Semaphore(concurrency)
    bar = tqdm(total=count, desc="throughput", disable=None if progress else True, leave=False)

    async def one(n: int) -> None:
        async with slots:
            await peer.community.propose(counterparty, BENCH_TYPE, {"n": n})
            bar.update()

    start = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    bar.close()
    return time.perf_counter() - start
