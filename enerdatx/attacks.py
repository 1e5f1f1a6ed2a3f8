"""Attack scenarios on the network Lab: real peers, real IPv8 messages, time in seconds.

The in-process versions (:mod:`enerdatx.reputation.scenarios`) count gossip rounds; these run
the same attacks through :class:`enerdatx.lab.Lab` peers, so detection is measured in seconds
of the community's own gossip and fraud rumours. The seed fixes every choice the scenario
makes (who trades with whom, amounts, which peers are victims); packet timing is the
network's, so detection times vary between runs while the bounds do not.

The double spender and the Sybil region trade plain payments (``Lab.accept``); the key
withholder and the free rider need the real market on every peer
(``Lab(..., market=True)``).

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

from enerdatx.crypto import decrypt_data, seal_to
from enerdatx.errors import DataVerificationError, EncodingError, LedgerError, MarketError, NetworkError
from enerdatx.lab import Lab
from enerdatx.market.formats import COMPLAINT, SALT_SIZE, make_opening, split_opening
from enerdatx.market.service import MarketService
from enerdatx.meter import cut_dataset, synthetic_household
from enerdatx.peer import Peer
from enerdatx.reputation import ReputationView
from enerdatx.reputation.scenarios import PAYMENT, ScenarioResult
from enerdatx.trustchain import FraudProof, HalfBlock

__all__ = ["lab_double_spender", "lab_free_rider", "lab_key_withholder", "lab_sybil_region"]


class _Spread:
    """When each honest peer first learned something, in seconds from ``begin()``."""

    def __init__(self, peers: list[Peer]) -> None:
        self.loop = asyncio.get_running_loop()
        self.peers = peers
        self.seconds: dict[bytes, float] = {}
        self.everyone = asyncio.Event()
        self.start = self.loop.time()

    def begin(self) -> None:
        """Start the clock (just before the attack)."""
        self.start = self.loop.time()

    def learned(self, peer: Peer) -> None:
        """``peer`` knows now (later calls for the same peer are ignored)."""
        if peer.public_key not in self.seconds:
            self.seconds[peer.public_key] = self.loop.time() - self.start
            if len(self.seconds) == len(self.peers):
                self.everyone.set()

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Wait for ``event`` until ``timeout`` seconds after ``begin()``; a timeout is reported, not raised."""
        with contextlib.suppress(TimeoutError):  # reported: fewer peers in the figures
            await asyncio.wait_for(event.wait(), max(timeout - (self.loop.time() - self.start), 0.001))

    def figures(self, holding: str) -> dict[str, Any]:
        """The first and last time a peer learned (last: None unless all did), and how many did."""
        times = sorted(self.seconds.values())
        return {
            "detected_first_seconds": round(times[0], 3) if times else None,
            "detected_all_seconds": round(times[-1], 3) if len(times) == len(self.peers) else None,
            holding: len(times),
        }


def _dataset(rng: random.Random) -> Any:
    """One day of a made-up household, chosen by ``rng``: what a seller lists."""
    readings = synthetic_household(seed=rng.randrange(2**31), days=1, location="2628")
    return cut_dataset(readings, resolution="1h", location="2628")


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
    spread = _Spread(good)

    def on_fraud_for(peer: Peer) -> Any:
        def record(proof: FraudProof) -> None:
            if proof.public_key == forker.public_key:
                spread.learned(peer)

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
    spread.begin()
    await lab.fork(forker, first, second, PAYMENT, timeout=timeout)
    for event in (both_signed, spread.everyone):
        await spread.wait(event, timeout)
    refused = 0
    for peer in good:
        try:
            await forker.community.propose(peer.public_key, PAYMENT, {"amount": 1}, timeout=trade_timeout)
        except (LedgerError, NetworkError):
            refused += 1
    return ScenarioResult(
        "lab_double_spender",
        seed,
        {"honest": honest, "transport": lab.transport},
        attacker_gain=max(len(countersigned) - 1, 0),
        detected_first_round=None,
        detected_all_round=None,
        figures={**spread.figures("honest_with_proof"), "refused_after_detection": refused},
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


async def lab_key_withholder(
    lab: Lab,
    *,
    honest: int = 8,
    rounds: int = 4,
    buys_per_round: int = 2,
    price: int = 20,
    seed: int = 1,
    timeout: float = 30.0,
) -> ScenarioResult:
    """A seller lists a data set and, paid, seals a well-formed key that decrypts nothing.

    Each round ``buys_per_round`` honest buyers try to buy it at once. A victim's market finds
    out when it opens the agreement and records a signed complaint, which the market community
    spreads; an honest buyer refuses a seller its book holds a complaint against. Gain: what
    the withholder was paid for useless keys (at most one payment per honest peer: a victim
    complains itself). Detection: seconds from the first bid until the first and until every
    honest peer holds a complaint against the withholder.
    """
    rng = random.Random(seed)
    peers = await lab.start(honest + 1)
    withholder, good = peers[-1].market, peers[-1 - honest : -1]
    honest_policy = withholder.market.payment_policy
    useless = make_opening(rng.randbytes(32), rng.randbytes(SALT_SIZE))

    def withhold(ledger: Any, proposal: HalfBlock) -> dict[str, Any]:
        # Every check of an honest seller, then a sealed opening of a key the data was not encrypted with.
        agreement = honest_policy(ledger, proposal)
        return {**agreement, "sealed_key": seal_to(proposal.public_key, useless)}

    withholder.peer.ledger.register_policy(PAYMENT, withhold)
    listing = withholder.sell(_dataset(rng), price)
    for peer in good:
        await peer.market.book.wait_for_listing(listing.listing_id, timeout)
    spread = _Spread(good)

    def on_complaint_for(peer: Peer) -> Any:
        def record(block: HalfBlock) -> None:
            if block.type == COMPLAINT and block.transaction.get("seller") == withholder.public_key:
                spread.learned(peer)

        return record

    for peer in good:
        peer.ledger.subscribe(on_complaint_for(peer))
    outcomes: list[str] = []

    async def try_to_buy(buyer: MarketService) -> str:
        if buyer.market.book.complaints_against(withholder.public_key):
            return "refused"
        try:
            await buyer.buy(listing.listing_id)
        except DataVerificationError:
            return "cheated"
        except (LedgerError, MarketError, NetworkError):
            return "failed"  # no settlement: nothing paid
        return "served"

    spread.begin()
    for _ in range(rounds):
        buyers = rng.sample(good, min(buys_per_round, honest))
        outcomes += await asyncio.gather(*(try_to_buy(peer.market) for peer in buyers))
    await spread.wait(spread.everyone, timeout)
    victims = outcomes.count("cheated")
    return ScenarioResult(
        "lab_key_withholder",
        seed,
        {"honest": honest, "rounds": rounds, "buys_per_round": buys_per_round, "price": price,
         "transport": lab.transport},
        attacker_gain=victims * price,
        figures={
            **spread.figures("honest_with_complaint"),
            "victims": victims,
            "refused": outcomes.count("refused"),
            "failed": outcomes.count("failed"),
            "withholder_received": withholder.market.balance().available - withholder.grant,
        },
    )


async def lab_free_rider(
    lab: Lab, *, sellers: int = 4, listings_per_seller: int = 2, seed: int = 1, timeout: float = 30.0
) -> ScenarioResult:
    """A peer copies every CID from the order book and fetches the ciphertext, but never pays.

    A paying buyer buys every listing first (the control). Then the free rider fetches each
    listed ciphertext from its seller (served to anyone who asks, and checked against its
    CID), crawls every seller's chain for the agreements that carry sealed keys, and tries to
    open each with its own identity. Gain: the plaintext bytes it obtained.
    """
    rng = random.Random(seed)
    peers = await lab.start(sellers + 2)
    good, rider, payer = peers[-sellers - 2 : -2], peers[-2].market, peers[-1].market
    count = sellers * listings_per_seller
    for _ in range(listings_per_seller):
        for seller in good:
            seller.market.sell(_dataset(rng), rng.randint(5, 50))
    for market in (rider, payer):
        await market.book.wait_for(lambda book: len(book) >= count, timeout)
    paid_for = 0
    for listing in payer.search():
        paid_for += len((await payer.buy(listing.listing_id)).plaintext)
    ciphertext_bytes = stolen = sealed_keys = 0
    listings = {listing.cid: listing for listing in rider.search()}
    for cid, listing in listings.items():
        data = await rider.community.fetch(listing.seller, cid)
        if rider.market.content.add_bytes(data) == cid:  # the bytes the CID names, nothing else
            ciphertext_bytes += len(data)
    for seller in good:
        await rider.peer.community.crawl(seller.public_key)
        for block in rider.peer.ledger.store.chain(seller.public_key):
            sealed = block.transaction.get("sealed_key") if block.type == PAYMENT else None
            if not isinstance(sealed, bytes):
                continue
            sealed_keys += 1
            stolen += _open_with(rider, sealed, list(listings))
    return ScenarioResult(
        "lab_free_rider",
        seed,
        {"sellers": sellers, "listings_per_seller": listings_per_seller, "transport": lab.transport},
        attacker_gain=stolen,
        figures={
            "listings_seen": len(listings),
            "ciphertext_bytes": ciphertext_bytes,
            "sealed_keys_seen": sealed_keys,
            "plaintext_bytes": stolen,
            "paying_buyer_bytes": paid_for,
        },
    )


def _open_with(market: MarketService, sealed: bytes, cids: list[str]) -> int:
    """The plaintext bytes a sealed key opens for ``market``'s peer among the ciphertexts ``cids``."""
    try:  # a key sealed to another buyer does not open with this identity
        key, _salt = split_opening(market.peer.ledger.identity.unseal(sealed))
    except (DataVerificationError, EncodingError):
        return 0
    opened = 0
    for cid in cids:
        with contextlib.suppress(DataVerificationError):
            opened += len(decrypt_data(key, market.market.content.cat(cid)))
    return opened
