"""Robustness scenarios on real local peers: trades under network faults, fraud under loss, floods.

Each scenario runs a Lab of market peers on the in-memory transport, returns its figures,
and checks the invariants that must hold whatever happened: both sides of every trade
agree once the network heals, every paid trade can be opened by its buyer, balances match
the chains. ``enerdatx bench robustness`` and tests/robustness/ run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any

from enerdatx.bench.faults import FaultProfile, Faults
from enerdatx.conditions import wait_within
from enerdatx.errors import EnerDatXError, ListingNotFoundError
from enerdatx.lab import Lab
from enerdatx.market.formats import PAYMENT, parse_listing
from enerdatx.market.payload import FetchRequestMessage, ListingsRequestMessage, RecordMessage
from enerdatx.market.service import MarketService
from enerdatx.meter import cut_dataset, synthetic_household
from enerdatx.peer import Peer
from enerdatx.trustchain.payload import (
    BlockBroadcastMessage,
    CrawlRequestMessage,
    ProposalMessage,
)

__all__ = ["TradeReport", "faulty_trades", "check_trades", "fraud_detection_seconds", "flood", "market_lab"]

FORK_TYPE = "edx.robustness.ping"


def market_lab(directory: str | os.PathLike[str], *, seed: int = 0, propose_timeout: float = 5.0,
               fetch_timeout: float = 5.0, settings: dict[str, Any] | None = None, packet_loss: float = 0.0,
               market_settings: dict[str, Any] | None = None) -> Lab:
    """A Lab whose peers all run a MarketService (durability off: these runs measure the network)."""
    market = {"fetch_timeout": fetch_timeout, **(market_settings or {})}
    return Lab(
        directory, "memory", packet_loss=packet_loss, seed=seed, progress=False, durable=False, settings=settings,
        market=lambda: MarketService(propose_timeout=propose_timeout, settings=market),
    )


def dataset(seed: int, days: int = 1) -> Any:
    """A small synthetic data set to sell."""
    readings = synthetic_household(seed=seed, days=days, location="2628")
    return cut_dataset(readings, resolution="1h", location="2628", household_type="family")


@dataclass
class TradeReport:
    """What happened to the trades of one run, after the network healed."""

    profile: str
    attempted: int = 0
    completed: int = 0  # buy() returned verified data
    failed_cleanly: int = 0  # buy() raised a typed error
    listing_not_seen: int = 0  # the buyer never learnt the listing in time (nothing signed)
    recovered_after_heal: int = 0  # buy() failed, but the seller had countersigned: opened afterwards
    inconsistent: int = 0  # a pair the two sides disagree on, or a paid trade the buyer cannot open
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON values."""
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


async def faulty_trades(
    directory: str | os.PathLike[str], profile: FaultProfile, *, sellers: int = 2, buyers: int = 2, seed: int = 0,
    restart_seller_mid_trade: bool = False, partition_seconds: float = 0.0, propose_timeout: float = 5.0,
) -> TradeReport:
    """Every buyer buys every seller's listing through ``profile``'s faults; then the network heals and
    the trades are checked on both sides.

    ``restart_seller_mid_trade`` restarts the first seller while the buys are in flight;
    ``partition_seconds`` cuts buyers from sellers for that long once the buys have started.
    """
    report = TradeReport(profile.name)
    faults = Faults(profile, seed=seed)
    started = time.perf_counter()
    async with market_lab(directory, seed=seed, propose_timeout=propose_timeout) as lab:
        peers = await lab.start(sellers + buyers)
        for peer in peers:
            faults.attach(peer)
        listings = [peer.market.sell(dataset(seed * 100 + i), price=10 + i) for i, peer in enumerate(peers[:sellers])]

        async def buy(buyer_index: int, listing: Any) -> None:
            service = lab.peers[buyer_index].market
            try:  # as a user waits: a listing not heard of is asked for again
                await service.wait_for_listing(listing.listing_id, timeout=propose_timeout)
            except ListingNotFoundError:
                report.listing_not_seen += 1
                return
            try:
                await service.buy(listing.listing_id)
                report.completed += 1
            except EnerDatXError as exc:
                report.failed_cleanly += 1
                report.errors[type(exc).__name__] = report.errors.get(type(exc).__name__, 0) + 1

        jobs = [asyncio.ensure_future(buy(b, listing)) for b in range(sellers, sellers + buyers) for listing in listings]
        report.attempted = len(jobs)
        if partition_seconds:
            faults.partition(lab.peers[:sellers], lab.peers[sellers:])
            await asyncio.sleep(partition_seconds)  # the partition lasts this long, by design
            faults.heal()
        if restart_seller_mid_trade:
            await asyncio.sleep(0.05)  # some proposals are on their way when the seller goes down
            faults.attach(await lab.restart(0))
        await asyncio.gather(*jobs)
        faults.enabled = False
        report.seconds = time.perf_counter() - started
        await check_trades(lab.peers[:sellers], lab.peers[sellers:], report)
    return report


async def check_trades(sellers: list[Peer], buyers: list[Peer], report: TradeReport) -> None:
    """After healing: every buyer fetches its sellers' chains; both sides must then agree on every
    payment, and a buyer must be able to open every trade its seller countersigned."""
    for buyer in buyers:
        service = buyer.market
        for seller in sellers:
            with contextlib.suppress(EnerDatXError):
                await buyer.community.crawl(seller.public_key)
            for proposal in buyer.store.chain(buyer.public_key):
                if proposal.type != PAYMENT or proposal.link_public_key != seller.public_key:
                    continue
                on_seller = seller.store.linked(proposal)
                on_buyer = buyer.store.linked(proposal)
                if on_seller is None:
                    continue  # never countersigned: the buyer's amount stays reserved, nothing was sold
                if on_buyer is None or on_buyer.hash != on_seller.hash:
                    report.inconsistent += 1
                    continue
                listing = parse_listing(seller.store.get_by_hash(proposal.transaction["listing"]))
                if service.market.keyring.purchase(listing.listing_id) is None:
                    try:
                        await service.market.open_agreement(listing, on_buyer)
                        report.recovered_after_heal += 1
                    except EnerDatXError:
                        report.inconsistent += 1
    # Balances: what each seller earned is what its buyers' chains say they paid it.
    for seller in sellers:
        earned = seller.market.balance().earned
        paid = sum(
            p.transaction["amount"] for b in buyers for p in b.store.chain(b.public_key)
            if p.type == PAYMENT and p.link_public_key == seller.public_key and seller.store.linked(p) is not None
        )
        if earned != paid:
            report.inconsistent += 1


async def fraud_detection_seconds(directory: str | os.PathLike[str], *, peers: int = 20, loss: float = 0.2,
                                  profile: FaultProfile | None = None, seed: int = 0, timeout: float = 30.0) -> float:
    """Seconds from a fork (two proposals at one sequence number) until every honest peer holds its proof.

    ``loss`` is the Lab's own packet loss; ``profile`` adds the faults of a profile on top.
    """
    async with Lab(directory, "memory", packet_loss=loss, seed=seed, progress=False, durable=False) as lab:
        lab.accept(FORK_TYPE)
        everyone = await lab.start(peers)
        if profile is not None:
            faults = Faults(profile, seed=seed)
            for peer in everyone:
                faults.attach(peer)
        forker, honest = everyone[0], everyone[1:]
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        pending = {p.public_key for p in honest}
        for peer in honest:
            def found(_proof: Any, key: bytes = peer.public_key) -> None:
                pending.discard(key)
                if not pending and not done.done():
                    done.set_result(None)
            peer.ledger.on_fraud(found)
        started = time.perf_counter()
        fork = asyncio.ensure_future(lab.fork(forker, honest[0], honest[1], FORK_TYPE, timeout=timeout))
        await wait_within(done, timeout)
        seconds = time.perf_counter() - started
        with contextlib.suppress(TimeoutError):  # the victims may learn of the fork before agreeing
            await fork
        return seconds


def _hostile_packets(victim: Peer, hostile: Peer, rng: random.Random, count: int) -> list[bytes]:
    """A mix of hostile packets from ``hostile``: crawls, replayed old blocks, fetches, listing requests,
    malformed records, random bytes and oversized packets."""
    tc, market = hostile.community, hostile.market.community
    cid = victim.market.book.search(seller=victim.public_key)[0].cid
    old = [b.encode() for b in victim.store.blocks()]  # replayed: everything the victim already holds
    def pack(community: Any, message: Any, sig: bool = True) -> bytes:
        return community.ezr_pack(message.msg_id, message, sig=sig)

    kinds = [
        lambda: pack(tc, CrawlRequestMessage(rng.getrandbits(32), victim.public_key, 1, 0)),
        lambda: pack(tc, ProposalMessage(rng.choice(old), [])),
        lambda: pack(tc, BlockBroadcastMessage(3, rng.choice(old)), sig=False),
        lambda: pack(market, FetchRequestMessage(rng.getrandbits(32), cid, 0)),
        lambda: pack(market, ListingsRequestMessage(1)),
        lambda: pack(market, RecordMessage(rng.randbytes(rng.randrange(1, 400)))),
        lambda: rng.randbytes(rng.randrange(1, 1500)),
        lambda: pack(tc, BlockBroadcastMessage(1, bytes(60_000)), sig=False) + bytes(10_000),  # oversized
    ]
    return [rng.choice(kinds)() for _ in range(count)]


async def flood(directory: str | os.PathLike[str], *, packets: int = 20_000, seed: int = 0,
                sellers_data_days: int = 31, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    """One honest seller flooded by a hostile peer while an honest buyer trades with it.

    Returns the Python heap's peak growth during the flood, how many packets the seller sent
    in answer (amplification), and whether the honest trade still completed. ``limits`` sets
    the rate limits of both communities (default: theirs).
    """
    rng = random.Random(seed)
    async with market_lab(directory, seed=seed, settings=limits, market_settings=limits) as lab:
        seller, buyer, hostile = await lab.start(3)
        service = seller.market
        listing = service.sell(dataset(seed, days=sellers_data_days), price=10)
        await buyer.market.book.wait_for_listing(listing.listing_id)
        packets_out = _hostile_packets(seller, hostile, rng, packets)
        answers = Faults(FaultProfile("count"))
        answers.attach(seller)  # counts every packet the seller sends, from both communities
        endpoint = hostile.ipv8.endpoint
        gc.collect()
        tracemalloc.start()
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        cpu = time.process_time()
        trade = asyncio.ensure_future(buyer.market.buy(listing.listing_id))
        for i, packet in enumerate(packets_out):
            endpoint.send(seller.address, packet)
            if i % 200 == 0:
                await asyncio.sleep(0)  # the flooder yields as a UDP socket would
        try:
            completed = bool(await wait_within(trade, 30))
        except (EnerDatXError, TimeoutError):
            completed = False
        for _ in range(50):
            await asyncio.sleep(0)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        cpu = time.process_time() - cpu
        return {
            "flood_packets": packets,
            "flood_peak_heap_mib": round((peak - baseline) / 2**20, 2),
            "flood_cpu_seconds": round(cpu, 2),
            "flood_answers_sent": answers.sent,
            "flood_dropped_trustchain": seller.community.packets_dropped,
            "flood_dropped_market": market_dropped(service),
            "flood_honest_trade_completed": completed,
            "flood_seller_blocks": seller.store.count(),
        }


def market_dropped(service: Any) -> int:
    """Packets the market community dropped unread (0 where it has no limits)."""
    return getattr(service.community, "packets_dropped", 0)
