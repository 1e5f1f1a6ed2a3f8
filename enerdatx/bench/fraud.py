"""Seconds until every honest peer holds the proof of a fork, the bytes each peer sent and its memory.

N peers all know each other; one forks its chain (two proposals at one sequence number, to two
honest peers, who countersign them unaware). The clock starts when the forker sends them and
stops when the last honest peer stores a fraud proof. Bytes count what each honest peer's
TrustChain community sent from then on, until the proof's rumour died out. The baseline in the
same run is the latency of one transaction in the same lab. The scenario is
:func:`enerdatx.cluster.scenarios.fraud`: in one process on the in-memory transport, or with
``--workers N`` on N Dask worker processes over UDP on 127.0.0.1. ``--packet-loss`` drops that
share of packets: on the memory transport where they are sent, on workers where each peer's
UDP socket receives them (seeded per worker).

From 1,000 peers up (``--peer auto``) the peers are light (enerdatx.cluster.light: in-memory
chains with the same validation, one address book per process); ``--peer full`` forces full
peers (a directory and SQLite file each). Every size runs in a fresh process, so that the
memory per peer (resident memory after the peers started, minus before, over N) is not
flattered by memory a previous size freed.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from enerdatx.bench.limits import (
    FULL_PEER_BYTES,
    LIGHT_PEER_BYTES,
    MAX_LOCAL_WORKERS,
    count,
    require_memory,
    share,
    workers,
)

TARGET_SECONDS = 5.0
LIGHT_FROM = 1000
MIN_PEERS = 4  # a forker, two victims and a witness


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench fraud``."""
    parser.add_argument("--peers", type=count(MIN_PEERS, 1_000_000_000), nargs="+", default=[200],
                        help=f"network sizes (several: growth), at least {MIN_PEERS}: a forker, two victims and a witness")
    parser.add_argument("--packet-loss", type=share, default=0.0, help="share of packets dropped, e.g. 0.2")
    parser.add_argument("--peer", choices=("auto", "full", "light"), default="auto",
                        help=f"full peers, light peers, or light from {LIGHT_FROM} peers up (default)")
    parser.add_argument("--workers", type=workers, default=0,
                        help="run the peers on this many Dask worker processes (UDP on 127.0.0.1; "
                             f"at most {MAX_LOCAL_WORKERS} here: 4 per CPU)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    if len(set(args.peers)) != len(args.peers):  # each size's figures are keyed by it: a repeat would overwrite
        repeated = sorted({n for n in args.peers if args.peers.count(n) > 1})
        raise ValueError(f"--peers: each size once (refused, not dropped: {', '.join(map(str, repeated))} repeated)")
    if args.workers and min(args.peers) < 4 * args.workers:
        raise ValueError(f"--peers {min(args.peers)}: with --workers {args.workers} the fraud scenario needs at least "
                         f"{4 * args.workers} peers (4 per worker)")
    for n in args.peers:
        light = args.peer == "light" or (args.peer == "auto" and n >= LIGHT_FROM)
        require_memory(n, LIGHT_PEER_BYTES if light else FULL_PEER_BYTES, "light peers" if light else "peers")
    runs = []
    for n in args.peers:
        light = args.peer == "light" or (args.peer == "auto" and n >= LIGHT_FROM)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
            runs.append(fresh.submit(_one, n, light, args.packet_loss, args.workers, args.seed,
                                     not args.no_progress).result())
    result: dict[str, Any] = {"packet_loss": args.packet_loss, "target_seconds_all_honest": TARGET_SECONDS,
                              "workers": args.workers}
    for figures in runs:
        result.update({f"{key}@{figures['peers']}": value for key, value in figures.items()
                       if key not in ("peers", "groups")})
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        result["growth_seconds_all_honest"] = (  # null when a run's proof reached nobody
            round(last["seconds_all_honest"] / first["seconds_all_honest"], 2)
            if last["seconds_all_honest"] is not None and first["seconds_all_honest"] else None
        )
        result["growth_peers"] = round(last["peers"] / first["peers"], 2)
    return result


def _one(n: int, light: bool, packet_loss: float, workers: int, seed: int, progress: bool) -> dict[str, Any]:
    from enerdatx.cluster import DaskLab, scenarios
    from enerdatx.lab import Lab

    # Every honest peer logs the proof it learns; thousands of lines would drown the result.
    logging.getLogger("enerdatx.trustchain.ledger").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="enerdatx-bench-fraud-") as directory:
        if workers:
            lab: Any = DaskLab(Path(directory), "udp", workers=workers, durable=False, seed=seed, light=light,
                               packet_loss=packet_loss)
        else:
            # Starting thousands of peers takes longer than the spread itself: that one gets a bar
            # (on a terminal, like every bar here; the workers' own bars would interleave, so none).
            lab = Lab(Path(directory), packet_loss=packet_loss, durable=False, seed=seed,
                      progress=None if progress else False)
        with lab:
            if workers:
                lab.groups.each("log_level", "enerdatx.trustchain.ledger", logging.ERROR)
            return scenarios.fraud(lab, peers=n, light=light, seed=seed).figures
