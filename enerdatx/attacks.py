"""Attack scenarios on the network Lab: real peers, real IPv8 messages, time in seconds.

The in-process versions (:mod:`enerdatx.reputation.scenarios`) count gossip rounds; these run
the same attacks through :class:`enerdatx.lab.Lab` peers, so detection is measured in seconds
of the community's own gossip and fraud rumours. The seed fixes every choice the scenario
makes (who trades with whom, amounts, which peers are victims); packet timing is the
network's, so detection times vary between runs while the bounds do not.

In a notebook::

    async with Lab(directory, transport="memory") as lab:
        result = await lab_double_spender(lab, honest=8, seed=1)
    result.figures["detected_all_seconds"], result.figures["refused_after_detection"]
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from enerdatx.errors import LedgerError, NetworkError
from enerdatx.lab import Lab
from enerdatx.peer import Peer
from enerdatx.reputation import ReputationView
from enerdatx.reputation.scenarios import PAYMENT, ScenarioResult
from enerdatx.trustchain import FraudProof, HalfBlock

__all__ = ["lab_double_spender", "lab_sybil_region"]


async def lab_double_spender(
    lab: Lab, *, honest: int = 8, seed: int = 1, timeout: float = 30.0, trade_timeout: float = 3.0
) -> ScenarioResult:
    """A peer signs two payments at one sequence number (``Lab.fork``) to two honest victims.

    Gain: the agreements it obtained for that one sequence number beyond the one it was
    entitled to. Detection: seconds from the fork until the first and until every honest peer
    stored the fraud proof. Then the forker asks every honest peer for one more trade.
    """
    rng = random.Random(seed)
    peers = await lab.start(honest + 1)
    lab.accept(PAYMENT)
    forker, good = peers[-1], peers[-1 - honest : -1]
    loop = asyncio.get_running_loop()
    learned: dict[bytes, float] = {}
    everyone_knows = asyncio.Event()

    def on_fraud_for(peer: Peer) -> Any:
        def record(proof: FraudProof) -> None:
            if proof.public_key == forker.public_key and peer.public_key not in learned:
                learned[peer.public_key] = loop.time() - start
                if len(learned) == len(good):
                    everyone_knows.set()

        return record

    for peer in good:
        peer.ledger.on_fraud(on_fraud_for(peer))
    first, second = rng.sample(good, 2)
    countersigned: set[bytes] = set()
    both_signed = asyncio.Event()

    def on_block_for(victim: Peer) -> Any:
        def record(block: HalfBlock) -> None:
            if block.public_key == victim.public_key and block.link_public_key == forker.public_key:
                countersigned.add(victim.public_key)
                if len(countersigned) == 2:
                    both_signed.set()

        return record

    for victim in (first, second):
        victim.ledger.subscribe(on_block_for(victim))
    start = loop.time()
    await lab.fork(forker, first, second, PAYMENT, timeout=timeout)
    for event in (both_signed, everyone_knows):
        with contextlib.suppress(TimeoutError):  # reported: fewer agreements, fewer peers with proof
            await asyncio.wait_for(event.wait(), max(timeout - (loop.time() - start), 0.001))
    refused = 0
    for peer in good:
        try:
            await forker.community.propose(peer.public_key, PAYMENT, {"amount": 1}, timeout=trade_timeout)
        except (LedgerError, NetworkError):
            refused += 1
    times = sorted(learned.values())
    return ScenarioResult(
        "lab_double_spender",
        seed,
        {"honest": honest, "transport": lab.transport},
        attacker_gain=max(len(countersigned) - 1, 0),
        detected_first_round=None,
        detected_all_round=None,
        figures={
            "detected_first_seconds": round(times[0], 3) if times else None,
            "detected_all_seconds": round(times[-1], 3) if len(times) == len(good) else None,
            "honest_with_proof": len(times),
            "refused_after_detection": refused,
        },
    )


async def lab_sybil_region(
    lab: Lab,
    *,
    honest: int = 6,
    sybils: int = 4,
    honest_trades: int = 12,
    fake_trades: int = 20,
    real_trades: int = 2,
    fake_amount: int = 10_000,
    seed: int = 1,
    trade_timeout: float = 5.0,
) -> ScenarioResult:
    """Sybils trade huge fake amounts among themselves and sell a little to honest peers.

    Before scoring, every honest peer crawls every chain it knows of (the defender sees
    everything: the Sybils' fake trades included). Gain: the best NetFlow any Sybil has in
    any honest view, against the real work the region did for honest peers.
    """
    rng = random.Random(seed)
    peers = await lab.start(honest + sybils)
    lab.accept(PAYMENT)
    good, fake = peers[-honest - sybils : -sybils], peers[-sybils:]
    views = [ReputationView(peer.ledger) for peer in good]

    async def pay(buyer: Peer, seller: Peer, amount: int) -> None:
        await buyer.community.propose(seller.public_key, PAYMENT, {"amount": amount}, timeout=trade_timeout)

    for _ in range(honest_trades):
        buyer, seller = rng.sample(good, 2)
        await pay(buyer, seller, rng.randint(1, 50))
    for _ in range(fake_trades if sybils > 1 else 0):
        buyer, seller = rng.sample(fake, 2)
        await pay(buyer, seller, fake_amount)
    real_work = 0
    for _ in range(real_trades):
        amount = rng.randint(1, 50)
        await pay(rng.choice(good), rng.choice(fake), amount)
        real_work += amount
    loop = asyncio.get_running_loop()
    start = loop.time()
    for peer in good:
        for other in peers:
            if other is not peer:
                await peer.community.crawl(other.public_key)
    crawl_seconds = loop.time() - start
    fake_keys = {peer.public_key for peer in fake}
    best = max(view.netflow(key) for view in views for key in fake_keys)
    return ScenarioResult(
        "lab_sybil_region",
        seed,
        {"honest": honest, "sybils": sybils, "fake_trades": fake_trades, "transport": lab.transport},
        attacker_gain=best,
        figures={
            "real_work": real_work,
            "max_sybil_netflow": best,
            "sybil_pairs_seen": min(
                sum(view.graph.has_edge(a, b) for a in fake_keys for b in fake_keys) for view in views
            ),
            "crawl_seconds": round(crawl_seconds, 3),
        },
    )
