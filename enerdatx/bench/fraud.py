"""Seconds until every honest peer holds the proof of a fork, and the bytes each peer sent.

N in-memory peers all know each other; one forks its chain (two proposals at one sequence
number, to two honest peers, who countersign them unaware). The clock starts when the
forker sends them and stops when the last honest peer stores a fraud proof. Bytes count
what each honest peer's TrustChain community sent from then on, until the proof's rumour
died out. The baseline in the same run is the latency of one transaction in the same lab.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from enerdatx.lab import Lab

BENCH_TYPE = "edx.bench.ping"
TARGET_SECONDS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench fraud``."""
    parser.add_argument("--peers", type=int, nargs="+", default=[200], help="network sizes (several: growth)")
    parser.add_argument("--packet-loss", type=float, default=0.0, help="share of packets dropped, e.g. 0.2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    if min(args.peers) < 4:
        raise ValueError("--peers needs at least 4 peers: a forker, two victims and a witness")
    # Every honest peer logs the proof it learns; thousands of lines would drown the result.
    logging.getLogger("enerdatx.trustchain.ledger").setLevel(logging.ERROR)
    runs = []
    for n in args.peers:
        with tempfile.TemporaryDirectory(prefix="enerdatx-bench-fraud-") as directory:
            runs.append(asyncio.run(_one(Path(directory), n, args)))
    result: dict[str, Any] = {"packet_loss": args.packet_loss, "target_seconds_all_honest": TARGET_SECONDS}
    for figures in runs:
        result.update({f"{key}@{figures['peers']}": value for key, value in figures.items() if key != "peers"})
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        result["growth_seconds_all_honest"] = round(
            last["seconds_all_honest"] / first["seconds_all_honest"], 2
        )
        result["growth_peers"] = round(last["peers"] / first["peers"], 2)
    return result


async def _one(directory: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    async with Lab(
        directory, packet_loss=args.packet_loss, durable=False, seed=args.seed, progress=False if args.no_progress else None
    ) as lab:
        lab.accept(BENCH_TYPE)
        peers = await lab.start(n)
        forker, honest = peers[0], peers[1:]
        first, second = rng.sample(honest, 2)
        baseline_start = time.perf_counter()
        await first.community.propose(second.public_key, BENCH_TYPE, {}, timeout=30)
        baseline = time.perf_counter() - baseline_start

        loop = asyncio.get_running_loop()
        learned: dict[bytes, float] = {}
        everyone = loop.create_future()
        for peer in honest:

            def on_fraud(_proof: Any, key: bytes = peer.public_key) -> None:
                learned.setdefault(key, time.perf_counter())
                if len(learned) == len(honest) and not everyone.done():
                    everyone.set_result(None)

            peer.ledger.on_fraud(on_fraud)
        sent_before = {peer.public_key: peer.community.bytes_sent for peer in honest}
        start = time.perf_counter()
        attack = asyncio.ensure_future(lab.fork(forker, first, second, BENCH_TYPE))
        await asyncio.wait_for(everyone, 120)
        await attack
        # Let the rumour rounds run out before counting bytes.
        settings = forker.community.settings
        await asyncio.sleep((settings.fraud_rounds + 1) * settings.fraud_round_interval)
        sent = [peer.community.bytes_sent - sent_before[peer.public_key] for peer in honest]
        times = sorted(t - start for t in learned.values())
    return {
        "peers": n,
        "seconds_all_honest": round(times[-1], 3),
        "seconds_first_proof": round(times[0], 3),
        "seconds_median_honest": round(statistics.median(times), 3),
        "bytes_sent_per_peer_mean": round(statistics.mean(sent)),
        "bytes_sent_per_peer_max": max(sent),
        "baseline_transaction_seconds": round(baseline, 4),
    }
