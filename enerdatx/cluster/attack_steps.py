"""The steps of the attacks (beyond the fraud steps of PeerGroup), on the peers of one group.

:class:`AttackSteps` is part of :class:`~enerdatx.cluster.group.PeerGroup`: each method acts on
the peers of its own process and takes and returns plain values, so that
:mod:`enerdatx.cluster.scenarios` can compose an attack from them on one process or on Dask
workers alike. What each attack does and measures is written in :mod:`enerdatx.attacks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

from enerdatx.conditions import wait_within
from enerdatx.crypto import decrypt_data, seal_to
from enerdatx.errors import DataVerificationError, EncodingError, LedgerError, MarketError, NetworkError
from enerdatx.market.formats import COMPLAINT, SALT_SIZE, make_opening, split_opening
from enerdatx.market.service import MarketService
from enerdatx.meter import cut_dataset, synthetic_household
from enerdatx.peer import Peer
from enerdatx.reputation import ReputationView
from enerdatx.reputation.scenarios import PAYMENT
from enerdatx.trustchain import HalfBlock

__all__ = ["AttackSteps", "dataset"]


def dataset(rng: random.Random) -> Any:
    """One day of a made-up household, chosen by ``rng``: what a seller lists."""
    readings = synthetic_household(seed=rng.randrange(2**31), days=1, location="2628")
    return cut_dataset(readings, resolution="1h", location="2628")


class AttackSteps:
    """Attack steps on the peers of this group (``self.peers``: index in the experiment -> Peer)."""

    peers: dict[int, Peer]
    _complaint_at: dict[int, float]
    _complaint_all: asyncio.Future[None] | None

    def _market(self, index: int) -> MarketService:
        return self.peers[index].market  # MarketError if it runs none

    # --- the double spender (the rest is PeerGroup's fraud steps) ---------------------------

    async def countersigned(self, victims: list[int], forker: str) -> int:
        """How many of these peers' own chains hold an agreement with ``forker``: what its fork obtained."""
        forker_key = bytes.fromhex(forker)
        return sum(any(block.link_public_key == forker_key for block in self.peers[i].store.chain(self.peers[i].public_key))
                   for i in victims)

    # --- the Sybil region ------------------------------------------------------------------

    async def pay_many(self, plan: list[tuple[int, str, int]], timeout: float = 5.0) -> int:
        """Each (payer index, payee key, amount) in turn, as a countersigned payment; how many were made."""
        for payer, payee, amount in plan:
            await self.peers[payer].community.propose(bytes.fromhex(payee), PAYMENT, {"amount": amount},
                                                      timeout=timeout)
        return len(plan)

    async def crawl_all(self, indices: list[int], keys: list[str]) -> float:
        """Each of these peers crawls the chain of each of those keys (but its own); the seconds it took."""
        start = time.perf_counter()
        for index in indices:
            peer = self.peers[index]
            for key in keys:
                if bytes.fromhex(key) != peer.public_key:
                    await peer.community.crawl(bytes.fromhex(key))
        return time.perf_counter() - start

    async def sybil_views(self, indices: list[int], sybils: list[str]) -> list[dict[str, Any]]:
        """In each of these peers' reputation view: the Sybils' best NetFlow and the Sybil pairs it sees."""
        fake = [bytes.fromhex(key) for key in sybils]
        rows = []
        for index in indices:
            view = ReputationView(self.peers[index].ledger)
            rows.append({"peer": index, "max_sybil_netflow": max(view.netflow(key) for key in fake),
                         "sybil_pairs_seen": sum(view.graph.has_edge(a, b) for a in fake for b in fake)})
        return rows

    # --- the key withholder ----------------------------------------------------------------

    async def withhold_keys(self, index: int, price: int, seed: int) -> str:
        """Peer ``index`` lists a data set and, paid, seals a well-formed key that decrypts nothing; its listing id."""
        rng = random.Random(seed)
        withholder = self._market(index)
        honest_policy = withholder.market.payment_policy
        useless = make_opening(rng.randbytes(32), rng.randbytes(SALT_SIZE))

        def withhold(ledger: Any, proposal: HalfBlock) -> dict[str, Any]:
            # Every check of an honest seller, then a sealed opening of a key the data was not encrypted with.
            agreement = honest_policy(ledger, proposal)
            return {**agreement, "sealed_key": seal_to(proposal.public_key, useless)}

        withholder.peer.ledger.register_policy(PAYMENT, withhold)
        return withholder.sell(dataset(rng), price).listing_id

    async def watch_complaints(self, seller: str, indices: list[int]) -> None:
        """Record when each of these peers first holds a complaint against ``seller``."""
        seller_key = bytes.fromhex(seller)
        honest = {i: self.peers[i] for i in indices}
        self._complaint_at = {}
        self._complaint_all = asyncio.get_running_loop().create_future() if honest else None
        for index, peer in honest.items():

            def record(block: HalfBlock, index: int = index) -> None:
                if block.type != COMPLAINT or block.transaction.get("seller") != seller_key:
                    return
                self._complaint_at.setdefault(index, time.time())
                done = self._complaint_all
                if len(self._complaint_at) == len(honest) and done is not None and not done.done():
                    done.set_result(None)

            peer.ledger.subscribe(record)

    async def try_to_buy(self, buyers: list[int], listing_id: str, seller: str) -> list[str]:
        """These peers try at once to buy the listing; per buyer: served, cheated, refused or failed."""
        seller_key = bytes.fromhex(seller)

        async def attempt(buyer: MarketService) -> str:
            if buyer.market.book.complaints_against(seller_key):
                return "refused"
            try:
                await buyer.buy(listing_id)
            except DataVerificationError:
                return "cheated"
            except (LedgerError, MarketError, NetworkError):
                return "failed"  # no settlement: nothing paid
            return "served"

        return list(await asyncio.gather(*(attempt(self._market(i)) for i in buyers)))

    async def wait_complaints(self, timeout: float) -> list[dict[str, Any]]:
        """Until every honest peer here holds a complaint or ``timeout`` passes (reported, not raised)."""
        if self._complaint_all is not None:
            with contextlib.suppress(TimeoutError):  # reported: fewer peers in the figures
                await wait_within(asyncio.shield(self._complaint_all), max(timeout, 0.001))
        return [{"peer": i, "learned_at": t} for i, t in sorted(self._complaint_at.items())]

    # --- the free rider --------------------------------------------------------------------

    async def sell_each(self, listings: list[tuple[int, int, int]]) -> list[str]:
        """Each (seller index, price, data seed) lists one made-up data set; the listing ids."""
        return [self._market(i).sell(dataset(random.Random(data_seed)), price).listing_id
                for i, price, data_seed in listings]

    async def buy_each(self, index: int, listing_ids: list[str]) -> int:
        """Peer ``index`` buys each listing in turn; the plaintext bytes it got."""
        market = self._market(index)
        return sum([len((await market.buy(listing_id)).plaintext) for listing_id in listing_ids])

    async def free_ride(self, index: int, listing_ids: list[str], sellers: list[str]) -> dict[str, int]:
        """Peer ``index`` fetches each listing's ciphertext without paying, then tries every sealed key it finds.

        A ciphertext counts when its bytes are the ones its CID names; the sealed keys are those
        in the payments on the sellers' chains, which it crawls.
        """
        rider = self._market(index)
        listings = {rider.market.book.get(listing_id).cid: rider.market.book.get(listing_id)
                    for listing_id in listing_ids}
        ciphertext_bytes = stolen = sealed_keys = 0
        for cid, listing in listings.items():
            data = await rider.community.fetch(listing.seller, cid)
            if rider.market.content.add_bytes(data) == cid:
                ciphertext_bytes += len(data)
        for seller in sellers:
            key = bytes.fromhex(seller)
            await rider.peer.community.crawl(key)
            for block in rider.peer.ledger.store.chain(key):
                sealed = block.transaction.get("sealed_key") if block.type == PAYMENT else None
                if isinstance(sealed, bytes):
                    sealed_keys += 1
                    stolen += _open_with(rider, sealed, list(listings))
        return {"listings_seen": len(listings), "ciphertext_bytes": ciphertext_bytes,
                "sealed_keys_seen": sealed_keys, "plaintext_bytes": stolen}


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
