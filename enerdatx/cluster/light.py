"""A lighter peer for experiments with thousands of peers: the same ledger, one address book per process.

A :class:`LightPeer` is a :class:`~enerdatx.peer.Peer` with its chain in an in-memory SQLite
database (the same :class:`~enerdatx.trustchain.BlockStore`, so the same validation and the
same fraud proofs) and no files. What makes 10,000 peers fit in one process is the address
book: a full peer keeps its own dict of every other peer's address, which is N^2 entries for
N peers and a list of all N keys built on every gossip push. Light peers of one process share
one :class:`AddressBook` (they would all learn the same addresses anyway) that samples gossip
targets uniformly, as the full peer does, without building that list. Services (the market)
need a directory and do not run on light peers.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enerdatx.crypto import Identity
from enerdatx.peer import Peer
from enerdatx.trustchain import BlockStore
from enerdatx.trustchain.community import TrustChainCommunity
from enerdatx.trustchain.payload import FraudProofMessage

if TYPE_CHECKING:
    from ipv8.messaging.interfaces.endpoint import Endpoint
    from ipv8.messaging.interfaces.udp.endpoint import Address

__all__ = ["AddressBook", "LightPeer", "SharedBookCommunity"]

MAX_CACHED_PACKETS = 1024


class AddressBook:
    """Where every peer of one experiment listens, by TrustChain key: one copy per process."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.addresses: dict[bytes, Address] = {}
        self.keys_by_address: dict[Address, bytes] = {}
        self._keys: list[bytes] = []  # indexable, for sampling in O(count)
        # Pure functions of their input, so one copy serves every light peer of the process:
        self.key_bins: dict[bytes, bytes] = {}  # TrustChain key -> IPv8 key (a curve25519 conversion)
        self.fraud_packets: dict[bytes, bytes] = {}  # proof -> its unsigned packet (no sender in it)
        self.fraud_packet_forkers: dict[bytes, bytes] = {}  # a proof's packet -> the forker it proves
        self.ipv8_peers: dict[bytes, Any] = {}  # TrustChain key -> the IPv8 peer we send to at its address
        self._spreading: dict[SharedBookCommunity, None] = {}  # communities with rumour rounds left
        self._round: asyncio.TimerHandle | None = None
        self.rng = rng or random.Random()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, public_key: bytes, address: Address) -> None:
        """Remember (or move) one peer."""
        if public_key not in self.addresses:
            self._keys.append(public_key)
        self.addresses[public_key] = address
        self.keys_by_address[address] = public_key

    def sample(self, count: int, exclude: Iterable[bytes] = ()) -> list[bytes]:
        """``count`` distinct keys drawn uniformly from the book minus ``exclude`` (all of them if fewer)."""
        excluded = {key for key in exclude if key in self.addresses}
        available = len(self._keys) - len(excluded)
        if available <= 0:
            return []
        if count >= available or len(excluded) > len(self._keys) // 2:
            candidates = [k for k in self._keys if k not in excluded]
            return self.rng.sample(candidates, min(count, len(candidates)))
        chosen: dict[bytes, None] = {}
        while len(chosen) < count:  # rejection: at least half the keys are candidates
            key = self._keys[self.rng.randrange(len(self._keys))]
            if key not in excluded:
                chosen[key] = None
        return list(chosen)


    def spreading(self, community: SharedBookCommunity) -> None:
        """Run ``community``'s fraud rounds from the book's one timer until its rumours are done."""
        self._spreading[community] = None
        if self._round is None:
            interval = community.settings.fraud_round_interval
            self._round = asyncio.get_running_loop().call_later(interval, self._run_round, interval)

    def _run_round(self, interval: float) -> None:
        for community in list(self._spreading):
            if not community.endpoint.is_open() or not community.fraud_round():
                del self._spreading[community]
        self._round = asyncio.get_running_loop().call_later(interval, self._run_round, interval) if self._spreading else None


class SharedBookCommunity(TrustChainCommunity):
    """The TrustChain community, its contacts kept in a process-wide :class:`AddressBook`."""

    book: AddressBook

    def use_book(self, book: AddressBook) -> None:
        """Read and write contacts in ``book`` from now on."""
        self.book = book
        for key, address in self.contacts.items():
            book.add(key, address)
        self.contacts = book.addresses
        self._keys_by_address = book.keys_by_address
        self._key_bins = book.key_bins
        self._peers = book.ipv8_peers
        # Two timers per peer (fraud rounds twice a second, seeds) cost 40 % of a core with
        # 10,000 idle peers; the book's one timer runs the rounds of the peers with a live rumour.
        # A peer's rounds keep their interval; only their phase is the book's, not the peer's own.
        self.cancel_pending_task("fraud-rounds")
        self.cancel_pending_task("seeds")  # light peers have no seeds: the book holds every address

    def _spread_fraud(self, proof: Any) -> None:
        super()._spread_fraud(proof)
        self.book.spreading(self)

    def on_fraud_proof(self, source_address: Address, data: bytes) -> None:
        """As the full peer does, without decoding again a proof this peer already holds.

        The packet of a proof is the same bytes from every sender (unsigned, no sender in it), so
        a packet already decoded in this process names its forker; if this peer holds that rumour,
        all the full peer would do is note the sender as a holder. Anything else takes the full path.
        """
        forkers = self.book.fraud_packet_forkers
        forker = forkers.get(data)
        if forker is not None and forker in self.rumours:
            sender = self._keys_by_address.get(source_address)
            if sender is not None:
                self.rumours.heard_from(forker, sender)
            return
        before = len(self.rumours)
        super().on_fraud_proof(source_address, data)
        newest = self.rumours.newest()
        if len(self.rumours) > before and newest is not None:  # this packet started a rumour: remember whose
            if len(forkers) >= MAX_CACHED_PACKETS:
                forkers.clear()
            forkers[data] = newest

    def fraud_round(self) -> bool:
        """One round of pushes for every rumour with rounds left; False once there are none."""
        self.rumours.round()
        return self.rumours.spreading

    def add_contact(self, public_key: bytes, address: Address, *, given: bool = False) -> None:
        """Remember where the peer with TrustChain key ``public_key`` listens (for every peer here;
        given or learnt alike: the book is the experiment's own, filled by the lab)."""
        if self.contacts.get(public_key) != address:
            self.book.add(public_key, address)
            self._peers.pop(public_key, None)

    def known_public_keys(self) -> list[bytes]:
        """Every key in the book but our own."""
        return [key for key in self.contacts if key != self.public_key]

    def _sample(self, count: int, exclude: Iterable[bytes] = ()) -> list[bytes]:
        return self.book.sample(count, {*exclude, self.public_key})

    def ezr_pack(self, msg_num: int, *payloads: Any, sig: bool = True) -> bytes:
        """Pack a message; an unsigned fraud proof's packet is the same bytes from every peer, so pack it once."""
        if sig or len(payloads) != 1 or not isinstance(payloads[0], FraudProofMessage):
            return super().ezr_pack(msg_num, *payloads, sig=sig)
        cache = self.book.fraud_packets
        packet = cache.get(payloads[0].proof)
        if packet is None:
            if len(cache) >= MAX_CACHED_PACKETS:
                cache.clear()
            packet = cache[payloads[0].proof] = super().ezr_pack(msg_num, *payloads, sig=False)
        return packet


class LightPeer(Peer):
    """A peer without files: an in-memory chain (same validation) and the process's address book."""

    community_class = SharedBookCommunity

    def __init__(
        self, endpoint: Endpoint, book: AddressBook, *, settings: dict[str, Any] | None = None, name: str = "light"
    ) -> None:
        opened = (Identity.generate(), BlockStore(":memory:", fsync=False))
        super().__init__(Path(name), endpoint, settings=settings, _opened=opened)
        assert isinstance(self.community, SharedBookCommunity)
        self.community.use_book(book)  # the caller adds this peer once its endpoint has an address
        self.book = book

    async def start(self) -> None:
        """Open the endpoint and start the overlays' tasks, without IPv8's walker loop.

        A light peer walks nowhere (its contacts are in the book), and the walker loop wakes
        twice a second per peer to find that out: with 10,000 peers, 20,000 idle wake-ups a second.
        """
        self.check_not_stopped()
        await self.ipv8.endpoint.open()
        for func, args in self.ipv8.on_start:
            result = func(*args)
            if inspect.isawaitable(result):
                await result
        self.running = True

    def add_contacts(self, contacts: Iterable[tuple[bytes, Address]]) -> None:
        """Add these contacts to the shared book (for every light peer of this process)."""
        for public_key, address in contacts:
            if public_key != self.public_key:
                self.book.add(public_key, address)
