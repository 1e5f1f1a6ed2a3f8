"""TrustChain ledger throughput between two in-process peers, against the Ed25519 bound.

A complete transaction signs two blocks and verifies two (each party checks the other's
half): 2 signs + 2 verifies is the Ed25519 bound. With own blocks durable, each party also
waits for the disk once (one fsync per own block, before it is sent), so the durable figure
is compared with the Ed25519 bound plus two fsyncs of this disk, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from enerdatx.bench.limits import count
from enerdatx.crypto import Identity, verify_signature
from enerdatx.trustchain import BlockStore, HalfBlock, TrustChain

BENCH_TYPE = "edx.bench"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``enerdatx bench trustchain``."""
    parser.add_argument("--transactions", type=count(1, 1_000_000), default=5000, help="complete transactions to run")
    parser.add_argument("--crawl-blocks", type=count(1, 1_000_000), default=10_000, help="length of the crawled chain")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    progress = not args.no_progress
    sign_s, verify_s = _ed25519_costs(args.transactions)
    fsync_s = _fsync_cost(max(20, min(args.transactions // 10, 500)))
    bound = 1.0 / (2 * sign_s + 2 * verify_s)
    durable_bound = 1.0 / (2 * sign_s + 2 * verify_s + 2 * fsync_s)
    result: dict[str, Any] = {
        "transactions": args.transactions,
        "ed25519_sign_us": round(sign_s * 1e6, 2),
        "ed25519_verify_us": round(verify_s * 1e6, 2),
        "ed25519_bound_tx_per_s": round(bound, 1),
        "fsync_us": round(fsync_s * 1e6, 2),
        "durable_bound_tx_per_s": round(durable_bound, 1),
    }
    # The default store (own blocks fsync'ed), one that never waits for the disk, and one in
    # memory: the gaps between them are the price of durability and of SQLite itself.
    for storage, suffix in (("fsync", ""), ("no_fsync", "_no_fsync"), ("memory", "_memory_store")):
        seconds, stored = _transactions(args.transactions, storage=storage, progress=progress)
        result[f"blocks_stored{suffix}"] = stored
        result[f"seconds{suffix}"] = round(seconds, 6)
        result[f"tx_per_s{suffix}"] = round(args.transactions / seconds, 1)
        against = durable_bound if storage == "fsync" else bound
        result[f"ratio_to_bound{suffix}"] = round(args.transactions / seconds / against, 3)
    crawl_seconds, crawl_stored = _crawl(args.crawl_blocks, progress=progress)
    result["crawl_blocks"] = args.crawl_blocks
    result["crawl_blocks_stored"] = crawl_stored
    result["crawl_blocks_validated_per_s"] = round(args.crawl_blocks / crawl_seconds, 1)
    result["ed25519_verify_bound_blocks_per_s"] = round(1.0 / verify_s, 1)
    return result


def _ed25519_costs(samples: int) -> tuple[float, float]:
    """Seconds per sign and per verify of a message the size of a benchmark block."""
    identity = Identity.generate()
    message = _sample_block(identity).encode()
    start = time.perf_counter()
    for _ in range(samples):
        signature = identity.sign(message)
    sign_s = (time.perf_counter() - start) / samples
    start = time.perf_counter()
    for _ in range(samples):
        verify_signature(identity.public_key, message, signature)
    verify_s = (time.perf_counter() - start) / samples
    return sign_s, verify_s


def _fsync_cost(samples: int) -> float:
    """Seconds per page written and synced to disk, in the directory the stores of the run live in.

    Like a commit to SQLite's write-ahead log once it has reached its working size: a page
    overwritten in an allocated file, then ``fdatasync`` (what SQLite calls on Linux).
    """
    sync = getattr(os, "fdatasync", os.fsync)
    page, pages = bytes(4096), 256
    with tempfile.TemporaryDirectory() as directory:
        fd = os.open(Path(directory, "fsync.probe"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.write(fd, page * pages)
            os.fsync(fd)  # allocating the file is not part of the cost
            start = time.perf_counter()
            for n in range(samples):
                os.pwrite(fd, page, (n % pages) * len(page))
                sync(fd)
            return (time.perf_counter() - start) / samples
        finally:
            os.close(fd)


def _sample_block(identity: Identity) -> HalfBlock:
    ledger = TrustChain(identity, BlockStore(fsync=False))
    return ledger.propose(Identity.generate().public_key, BENCH_TYPE, {"amount": 1, "n": 0})


def _transactions(count: int, *, storage: str, progress: bool) -> tuple[float, int]:
    """Seconds for ``count`` complete transactions (every block crosses a simulated wire), and
    the blocks the two peers then hold between them."""
    with tempfile.TemporaryDirectory() as directory:

        def store(name: str) -> BlockStore:
            if storage == "memory":
                return BlockStore(":memory:", fsync=False)
            return BlockStore(Path(directory, name), fsync=storage == "fsync")

        alice = TrustChain(Identity.generate(), store("a.sqlite"))
        bob = TrustChain(Identity.generate(), store("b.sqlite"))
        bob.register_policy(BENCH_TYPE, lambda ledger, proposal: None)
        label = f"transactions ({storage})"
        start = time.perf_counter()
        for n in tqdm(range(count), desc=label, disable=not progress, mininterval=0.5):
            proposal = alice.propose(bob.public_key, BENCH_TYPE, {"amount": 1, "n": n})
            agreement = bob.countersign(HalfBlock.decode(proposal.encode()))
            if alice.receive(HalfBlock.decode(agreement.encode())).is_invalid:
                raise AssertionError("agreement refused")
        seconds = time.perf_counter() - start
        stored = alice.store.count() + bob.store.count()
        if stored != 4 * count:
            raise AssertionError("a transaction was not stored by both peers")
        alice.store.close()
        bob.store.close()
    return seconds, stored


def _crawl(length: int, *, progress: bool) -> tuple[float, int]:
    """Seconds for a fresh peer to validate and store a crawled chain of ``length`` blocks, and
    how many it stored."""
    with tempfile.TemporaryDirectory() as directory:
        owner = TrustChain(Identity.generate(), BlockStore(Path(directory, "o.sqlite"), fsync=False))
        for n in tqdm(range(length), desc="building chain", disable=not progress, mininterval=0.5):
            owner.record(BENCH_TYPE, {"n": n})
        wire = [block.encode() for block in owner.store.chain(owner.public_key)]
        crawler = TrustChain(Identity.generate(), BlockStore(Path(directory, "c.sqlite")))
        start = time.perf_counter()
        results = crawler.receive_many([HalfBlock.decode(data) for data in wire])
        seconds = time.perf_counter() - start
        stored = crawler.store.count()
        if any(result.is_invalid for result in results) or stored != length:
            raise AssertionError("crawled chain was not fully accepted")
        owner.store.close()
        crawler.store.close()
    return seconds, stored
