"""The peers of one process, driven by plain values: what a Dask actor hosts on each worker.

A :class:`PeerGroup` owns some peers of an experiment, numbered by their index in the whole
experiment. Its methods take and return plain data (indices, hex keys, listing ids, rows for a
DataFrame) so that the same calls work in-process and through a Dask actor on another machine;
every method is a coroutine, so that Dask runs it on the event loop the peers live on (a worker's
own loop; a plain method would run in a thread of the actor pool, beside the peers' SQLite). Times that
are compared across groups are wall-clock (``time.time()``): exact on one machine, as good as
the hosts' clock synchronisation on a cluster.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
from ipv8.messaging.interfaces.udp.endpoint import UDPv4Address
from tqdm import tqdm

from enerdatx.cluster.attack_steps import AttackSteps
from enerdatx.cluster.light import AddressBook, LightPeer
from enerdatx.conditions import wait_within
from enerdatx.errors import EnerDatXError, LedgerError, NetworkError
from enerdatx.lab import Lab, LossyUDPEndpoint, MemoryEndpoint, Transport, _accept_all, _free_memory_address
from enerdatx.peer import Peer, Service

__all__ = ["PeerGroup", "Contact"]

# Light peers open no files: start them in bigger batches.
LIGHT_BATCH = 256

Contact = tuple[int, str, str, int]
"""(index in the experiment, TrustChain key as hex, host, port)."""


def _rss() -> int:
    return psutil.Process(os.getpid()).memory_info().rss


class PeerGroup(AttackSteps):
    """Start, drive and inspect the peers of one process; every method takes and returns plain values.

    The steps of the Sybil region, key withholder and free rider attacks are its
    :class:`~enerdatx.cluster.attack_steps.AttackSteps`.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        transport: Transport = "udp",
        host: str = "127.0.0.1",
        *,
        settings: dict[str, Any] | None = None,
        seed: int | None = None,
        durable: bool = False,
        light: bool = False,
        packet_loss: float = 0.0,
        lab: Lab | None = None,
    ) -> None:
        self.lab = lab or Lab(directory, transport, host=host, settings=settings, seed=seed, progress=False,
                              durable=durable, packet_loss=packet_loss)
        self.host = host
        self.light = light
        self.book = AddressBook(random.Random(seed))
        self.peers: dict[int, Peer] = {}
        self._contacts: list[Contact] = []
        self._fraud_at: dict[int, float] = {}
        self._fraud_all: asyncio.Future[None] | None = None
        self._fraud_cpu = [0.0, 0.0]
        self._complaint_at: dict[int, float] = {}
        self._complaint_all: asyncio.Future[None] | None = None
        self.rss_before_start = _rss()

    # --- peers -------------------------------------------------------------------------

    async def start(self, first: int, n: int, services: Callable[[Peer], Iterable[Service]] | None = None) -> list[Contact]:
        """Start peers ``first`` .. ``first + n - 1``; returns their contacts."""
        if self.light:
            if services is not None:
                raise EnerDatXError("light peers run no services (they have no directory)")
            started = []
            disable = None if self.lab.progress is not False else True  # None: only on a terminal, as Lab.start
            with tqdm(total=n, desc="starting light peers", disable=disable, leave=False, mininterval=0.5) as bar:
                for batch in range(0, n, LIGHT_BATCH):
                    size = min(LIGHT_BATCH, n - batch)
                    started += await asyncio.gather(*(self._start_light() for _ in range(size)))
                    bar.update(size)
            self.lab.peers += started  # so that the lab stops them; never introduced one by one (N^2)
            self.lab.settle()
        else:
            before, lab_services = len(self.lab.peers), self.lab.services
            self.lab.services = services if services is not None else lab_services
            try:
                started = (await self.lab.start(n))[before:]
            finally:
                self.lab.services = lab_services
        contacts = []
        for offset, peer in enumerate(started):
            self.peers[first + offset] = peer
            host, port = peer.address
            contacts.append((first + offset, peer.public_key.hex(), host, port))
        self._contacts += contacts
        return contacts

    async def _start_light(self) -> Peer:
        if self.lab.transport == "memory":
            endpoint: Any = MemoryEndpoint(_free_memory_address(self.lab.rng), self.lab.packet_loss, self.lab.rng)
        else:
            endpoint = LossyUDPEndpoint(0, self.host, self.lab.packet_loss, self.lab.rng)
        peer = LightPeer(endpoint, self.book, settings=self.lab.settings)
        for block_type in self.lab.accepted:
            peer.ledger.register_policy(block_type, _accept_all)
        await peer.start()
        self.book.add(peer.public_key, peer.address)
        return peer

    async def add_contacts(self, contacts: Iterable[Contact]) -> None:
        """Tell every peer here where those peers listen (light peers: the shared book, once)."""
        pairs = [(bytes.fromhex(key), UDPv4Address(host, port)) for _, key, host, port in contacts]
        if self.light:
            for key, address in pairs:
                self.book.add(key, address)
            return
        for peer in self.peers.values():
            peer.learn_contacts(pairs)  # the lab's own peers, on every worker: nothing to check, n² times

    async def accept(self, block_type: str) -> None:
        """Every peer here countersigns any proposal of ``block_type``."""
        self.lab.accept(block_type)  # the lab's own peers, and later ones
        for peer in self.peers.values():
            if isinstance(peer, LightPeer):
                peer.ledger.register_policy(block_type, _accept_all)

    async def log_level(self, logger: str, level: int) -> None:
        """Set a logger's level in this process (thousands of peers each logging one proof drown a run)."""
        logging.getLogger(logger).setLevel(level)

    async def count(self) -> int:
        """How many peers run here."""
        return len(self.peers)

    async def stop(self) -> None:
        """Stop every peer here (light ones too: they are in the lab's list)."""
        await self.lab.stop()
        self.peers.clear()

    # --- transactions and the market -----------------------------------------------------

    async def transact(self, index: int, counterparty: str, block_type: str, timeout: float = 30.0) -> float:
        """One countersigned transaction from peer ``index``; returns its seconds."""
        start = time.perf_counter()
        await self.peers[index].community.propose(bytes.fromhex(counterparty), block_type, {}, timeout=timeout)
        return time.perf_counter() - start

    async def sell(self, indices: list[int], price: int, days: int = 1, seed: int = 1) -> list[tuple[int, str]]:
        """Each of these peers lists one synthetic data set; returns (index, listing id)."""
        from enerdatx.meter import cut_dataset, synthetic_household

        readings = synthetic_household(seed=seed, days=days, location="2628")
        dataset = cut_dataset(readings, resolution="15min", location="2628", household_type="family")
        return [(i, self._market(i).sell(dataset, price).listing_id) for i in indices]

    async def wait_for_listings(self, indices: list[int], listing_ids: list[str], timeout: float = 120.0) -> None:
        """Until each of these peers' order books holds every one of those listings."""
        wanted = set(listing_ids)

        def complete(book: Any) -> bool:
            return len(book) >= len(wanted) and all(_holds(book, i) for i in wanted)

        markets = [self._market(i) for i in indices]
        await asyncio.gather(*(m.market.book.wait_for(complete, timeout) for m in markets))

    async def quiet(self, seconds: float = 0.3, timeout: float = 60.0) -> float:
        """Until no peer of this group has received a packet for ``seconds`` (see Lab.quiet)."""
        return await self.lab.quiet(seconds, timeout)

    async def buy_many(self, plan: list[tuple[int, str]], concurrency: int = 10) -> list[dict[str, Any]]:
        """Run the trades (buyer index, listing id), each buyer one at a time; one row per trade."""
        in_flight = asyncio.Semaphore(max(1, concurrency))
        by_buyer: dict[int, list[str]] = {}
        for buyer, listing_id in plan:
            by_buyer.setdefault(buyer, []).append(listing_id)
        rows: list[dict[str, Any]] = []

        async def shop(buyer: int, listing_ids: list[str]) -> None:
            market = self._market(buyer)
            for listing_id in listing_ids:
                async with in_flight:
                    started = time.time()
                    try:
                        trade = await market.buy(listing_id)
                    except EnerDatXError as exc:  # under overload: counted, not fatal
                        rows.append({"buyer": buyer, "listing_id": listing_id, "started": started,
                                     "finished": time.time(), "seconds": None, "amount": 0,
                                     "error": f"{type(exc).__name__}: {exc}"})
                        continue
                    rows.append({"buyer": buyer, "listing_id": listing_id, "started": started,
                                 "finished": time.time(), "seconds": trade.seconds, "amount": trade.amount,
                                 "seller": trade.listing.seller.hex(), "error": None})

        await asyncio.gather(*(shop(buyer, ids) for buyer, ids in by_buyer.items()))
        return rows

    # --- what the peers hold -------------------------------------------------------------

    async def chains(self) -> list[dict[str, Any]]:
        """Every block of each peer's own chain, one row each."""
        rows = []
        for index, peer in self.peers.items():
            for block in peer.store.chain(peer.public_key):
                rows.append({"peer": index, "public_key": block.public_key.hex(),
                             "sequence_number": block.sequence_number, "type": block.type,
                             "link_public_key": block.link_public_key.hex(),
                             "link_sequence_number": block.link_sequence_number, "hash": block.hash.hex()})
        return rows

    async def balances(self, indices: list[int] | None = None) -> list[dict[str, Any]]:
        """Each market peer's (or these peers') balance of its own chain, as it computes it."""
        rows = []
        if indices is None:  # a peer that runs no market has no balance to show
            indices = [index for index, peer in self.peers.items() if peer.has_market]
        for index in indices:
            balance = self._market(index).market.balance()
            rows.append({"peer": index, "public_key": balance.public_key.hex(), "grant": balance.grant,
                         "earned": balance.earned, "spent": balance.spent, "available": balance.available,
                         "complete": balance.complete, "blocks": balance.blocks})
        return rows

    async def fraud_proofs(self) -> list[dict[str, Any]]:
        """Every fraud proof each peer here holds: who forked, at which sequence number."""
        return [{"peer": i, "forker": proof.public_key.hex(), "sequence_number": proof.sequence_number}
                for i, p in self.peers.items() for proof in p.store.fraud_proofs()]

    async def traffic(self) -> list[dict[str, Any]]:
        """Bytes and packets each peer's TrustChain community has sent so far, and the packets its socket dropped.

        ``packets_dropped`` counts what simulated loss (``packet_loss``) threw away on arrival.
        """
        return [{"peer": i, "bytes_sent": p.community.bytes_sent, "packets_sent": p.community.packets_sent,
                 "packets_dropped": getattr(p.ipv8.endpoint, "dropped", 0)}
                for i, p in self.peers.items()]

    async def cpu_seconds(self) -> float:
        """CPU seconds this process has used so far (every thread: the peers', the worker's own)."""
        return time.process_time()

    async def memory(self) -> dict[str, int]:
        """This process's resident memory now and before the first peer started, and its peer count."""
        return {"rss": _rss(), "rss_before_start": self.rss_before_start, "peers": len(self.peers)}

    # --- fraud -------------------------------------------------------------------------

    async def watch_fraud(self, forker: str) -> None:
        """Record when each peer here (but the forker) first holds a proof against ``forker``."""
        forker_key = bytes.fromhex(forker)
        honest = {i: p for i, p in self.peers.items() if p.public_key != forker_key}
        self._fraud_at = {}
        self._fraud_all = asyncio.get_running_loop().create_future() if honest else None
        self._fraud_cpu = [time.process_time(), 0.0]  # this process's CPU time from now to the last proof
        if not honest:
            return
        for index, peer in honest.items():

            def learned(proof: Any, index: int = index) -> None:
                if proof.public_key != forker_key:
                    return
                self._fraud_at.setdefault(index, time.time())
                if len(self._fraud_at) == len(honest) and self._fraud_all and not self._fraud_all.done():
                    self._fraud_cpu[1] = time.process_time()
                    self._fraud_all.set_result(None)

            peer.ledger.on_fraud(learned)

    async def fork(self, forker: int, first: int, second: int, block_type: str) -> float:
        """Peer ``forker`` forks its chain at the two victims (all three here); returns the wall time it began."""
        started = time.time()
        await self.lab.fork(self.peers[forker], self.peers[first], self.peers[second], block_type)
        return started

    async def wait_fraud(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Wait until every honest peer here holds the proof; one row per peer, with the time it learned."""
        if self._fraud_all is not None:
            await wait_within(asyncio.shield(self._fraud_all), timeout)
        return [{"peer": i, "learned_at": t} for i, t in sorted(self._fraud_at.items())]

    async def fraud_cpu_seconds(self) -> float:
        """CPU seconds this process spent from ``watch_fraud`` until its last honest peer held the proof."""
        start, done = self._fraud_cpu
        return max(0.0, done - start)

    async def ask_everyone(self, index: int, counterparties: list[str], block_type: str,
                           timeout: float = 3.0) -> dict[str, int]:
        """Peer ``index`` proposes one transaction to each of them at once; how many agreed or refused."""

        async def ask(key: str) -> bool:
            try:
                await self.peers[index].community.propose(bytes.fromhex(key), block_type, {"n": 1}, timeout=timeout)
            except (LedgerError, NetworkError):
                return False
            return True

        agreed = sum(await asyncio.gather(*(ask(key) for key in counterparties)))
        return {"agreed": agreed, "refused": len(counterparties) - agreed}

    async def rumour_done(self) -> None:
        """Wait out the fraud rumour's rounds (a fixed schedule: there is no event for "nobody pushes any more")."""
        if self.peers:
            settings = next(iter(self.peers.values())).community.settings
            await asyncio.sleep((settings.fraud_rounds + 1) * settings.fraud_round_interval)


def _holds(book: Any, listing_id: str) -> bool:
    try:
        book.get(listing_id)
    except EnerDatXError:
        return False
    return True

