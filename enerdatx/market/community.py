"""The market community on IPv8: spreads listings, serves ciphertexts, carries negotiation steps.

It only moves bytes; the MarketService decides. Peers are found through the TrustChain
community of the same Peer (its contacts and neighbours), addressed by TrustChain key.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from ipv8.community import Community, CommunitySettings
from ipv8.lazy_community import lazy_wrapper

from enerdatx.errors import EncodingError, MarketError, PeerUnreachableError
from enerdatx.market.formats import COMPLAINT, LISTING, WITHDRAWAL
from enerdatx.market.subscription_formats import SUBSCRIPTION_RECORD_TYPES
from enerdatx.market.payload import (
    FetchRequestMessage,
    FetchResponseMessage,
    ListingsRequestMessage,
    NegotiationMessage,
    RecordMessage,
    RequestMessage,
)
from enerdatx.trustchain import HalfBlock
from enerdatx.trustchain.community import SenderLimits, trustchain_key

if TYPE_CHECKING:
    from ipv8.peer import Peer as IPv8Peer

    from enerdatx.market.service import MarketService

__all__ = ["MarketCommunity", "MarketSettings", "RECORD_TYPES", "CHUNK_SIZE"]

logger = logging.getLogger(__name__)

RECORD_TYPES = frozenset({LISTING, WITHDRAWAL, COMPLAINT}) | SUBSCRIPTION_RECORD_TYPES
# A chunk stays well below the 32 KiB packets peers accept.
CHUNK_SIZE = 16 * 1024
MAX_CHUNKS = 4096  # 64 MiB per data set


class MarketSettings(CommunitySettings):
    """What the market community is given at birth."""

    service: Any = None
    """The MarketService that decides on everything the community receives."""

    fetch_timeout: float = 10.0
    retry_interval: float = 0.25
    sync_interval: float = 1.0
    """Seconds between looks for neighbours we have not asked for their listings yet."""

    max_packet_size: int = 65_507
    rate_per_second: float = 200.0
    rate_burst: int = 400
    """Token bucket per sender address, as in the TrustChain community: a flooder (each fetch
    request makes us send up to a whole ciphertext) is dropped before anything is decoded."""


class MarketCommunity(Community):
    """Moves market records, ciphertext chunks, negotiation steps and standing requests."""

    community_id = bytes.fromhex("656478206d61726b65742076312e30a8c3f21d07")
    settings_class = MarketSettings

    def __init__(self, settings: MarketSettings) -> None:
        if settings.service is None:
            raise ValueError("MarketCommunity needs settings.service")
        super().__init__(settings)
        self.settings = settings
        self.service: MarketService = settings.service
        self._synced: set[bytes] = set()
        self._fetches: dict[int, tuple[asyncio.Future[None], dict[int, bytes], list[int]]] = {}
        self._limits = SenderLimits(settings.max_packet_size, settings.rate_per_second, settings.rate_burst)
        self.packets_dropped = 0
        self.add_message_handler(RecordMessage, self.on_record)
        self.add_message_handler(ListingsRequestMessage, self.on_listings_request)
        self.add_message_handler(FetchRequestMessage, self.on_fetch_request)
        self.add_message_handler(FetchResponseMessage, self.on_fetch_response)
        self.add_message_handler(NegotiationMessage, self.on_negotiation)
        self.add_message_handler(RequestMessage, self.on_request)
        self.register_task("sync", self._sync_new_neighbours, interval=settings.sync_interval, delay=0)

    def on_packet(self, packet: tuple[Any, bytes], warn_unknown: bool = True) -> None:
        """Drop oversized market packets and senders beyond their rate before decoding anything."""
        address, data = packet
        if not self._limits.admit(address, data):
            self.packets_dropped += 1
            return
        super().on_packet(packet, warn_unknown)

    # --- addressing ------------------------------------------------------------------

    def send_to(self, public_key: bytes, payload: Any) -> None:
        """Sign and send one message to the peer with TrustChain key ``public_key``."""
        peer = self.service.peer.community.peer_for(public_key)
        if peer is None:
            raise PeerUnreachableError(f"no address known for peer {public_key.hex()[:16]}")
        try:
            self.ez_send(peer, payload)
        except Exception:  # noqa: BLE001 - a closed endpoint is a lost datagram
            logger.debug("could not send to %s", peer.address, exc_info=True)

    def broadcast(self, payload: Any) -> None:
        """Send to every peer we know."""
        for key in self.service.peer.community.known_public_keys():
            self.send_to(key, payload)

    @property
    def unsynced(self) -> int:
        """Known peers we have not asked for their records yet."""
        return sum(key not in self._synced for key in self.service.peer.community.known_public_keys())

    def _sync_new_neighbours(self) -> None:
        for key in self.service.peer.community.known_public_keys():
            if key not in self._synced:
                self._synced.add(key)
                self.send_to(key, ListingsRequestMessage(self.service.first_gap(key)))

    # --- records ---------------------------------------------------------------------

    def publish(self, block: HalfBlock) -> None:
        """Spread one of our market records to everyone we know."""
        self.broadcast(RecordMessage(block.encode()))

    @lazy_wrapper(RecordMessage)
    def on_record(self, peer: IPv8Peer, payload: RecordMessage) -> None:
        """Hand a gossiped market record to the ledger (which validates and stores it)."""
        if trustchain_key(peer) is None:
            return
        try:
            block = HalfBlock.decode(payload.block)
        except EncodingError:
            return
        if block.type in RECORD_TYPES and block.is_record:
            self.service.receive_record(block)

    @lazy_wrapper(ListingsRequestMessage)
    def on_listings_request(self, peer: IPv8Peer, payload: ListingsRequestMessage) -> None:
        """Send our market records to a peer that asks (a newcomer)."""
        sender = trustchain_key(peer)
        if sender is None:
            return
        for block in self.service.own_records(payload.since):
            self.ez_send(peer, RecordMessage(block.encode()))
        if sender not in self._synced:  # a newcomer to us, or we to them: ask back at once
            self._synced.add(sender)
            self.ez_send(peer, ListingsRequestMessage(self.service.first_gap(sender)))

    # --- ciphertexts -----------------------------------------------------------------

    async def fetch(self, seller: bytes, cid: str) -> bytes:
        """Fetch the ciphertext ``cid`` from ``seller`` chunk by chunk; MarketError if it fails."""
        identifier = int.from_bytes(os.urandom(4), "big")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        chunks: dict[int, bytes] = {}
        total: list[int] = []
        self._fetches[identifier] = (done, chunks, total)
        deadline = loop.time() + self.settings.fetch_timeout
        try:
            self.send_to(seller, FetchRequestMessage(identifier, cid, 0))
            interval = self.settings.retry_interval
            while not done.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise MarketError(f"{cid} was not served by {seller.hex()[:16]} in time")
                try:
                    await asyncio.wait_for(asyncio.shield(done), min(interval, remaining))
                except TimeoutError:
                    interval = min(interval * 2, 2.0)
                    missing = [i for i in range(total[0])] if total else [0]
                    for index in missing:
                        if index not in chunks:
                            self.send_to(seller, FetchRequestMessage(identifier, cid, index))
        finally:
            del self._fetches[identifier]
        if total[0] == 0:
            raise MarketError(f"{seller.hex()[:16]} does not serve {cid}")
        return b"".join(chunks[i] for i in range(total[0]))

    @lazy_wrapper(FetchRequestMessage)
    def on_fetch_request(self, peer: IPv8Peer, payload: FetchRequestMessage) -> None:
        """Serve one chunk (the first request gets every chunk) of a ciphertext we listed."""
        data = self.service.ciphertext(payload.cid)
        if data is None:
            self.ez_send(peer, FetchResponseMessage(payload.identifier, 0, 0, b""))
            return
        count = max(1, -(-len(data) // CHUNK_SIZE))
        wanted = range(count) if payload.chunk == 0 else [payload.chunk] if payload.chunk < count else []
        for index in wanted:
            piece = data[index * CHUNK_SIZE:(index + 1) * CHUNK_SIZE]
            self.ez_send(peer, FetchResponseMessage(payload.identifier, index, count, piece))

    @lazy_wrapper(FetchResponseMessage)
    def on_fetch_response(self, peer: IPv8Peer, payload: FetchResponseMessage) -> None:
        """Collect one chunk of a fetch we started (the content's CID is checked afterwards)."""
        fetch = self._fetches.get(payload.identifier)
        if fetch is None or fetch[0].done() or payload.chunks > MAX_CHUNKS:
            return
        done, chunks, total = fetch
        if not total:
            total.append(payload.chunks)
        if payload.chunks != total[0] or (payload.chunks and payload.chunk >= payload.chunks):
            return
        if payload.chunks:
            chunks[payload.chunk] = payload.data
        if len(chunks) == total[0]:
            done.set_result(None)

    # --- negotiation and standing requests --------------------------------------------

    def send_step(self, counterparty: bytes, step: bytes) -> None:
        """Send one encoded negotiation step."""
        self.send_to(counterparty, NegotiationMessage(step))

    @lazy_wrapper(NegotiationMessage)
    def on_negotiation(self, peer: IPv8Peer, payload: NegotiationMessage) -> None:
        """Pass a negotiation step, with its authenticated sender, to the service."""
        sender = trustchain_key(peer)
        if sender is not None:
            self.service.receive_step(sender, payload.step)

    def publish_request(self, request: bytes) -> None:
        """Spread an encoded standing request to everyone we know."""
        self.broadcast(RequestMessage(request))

    @lazy_wrapper(RequestMessage)
    def on_request(self, peer: IPv8Peer, payload: RequestMessage) -> None:
        """Pass a relayed standing request to the service (it checks the buyer's signature)."""
        self.service.receive_request(payload.request)
