"""The market community on IPv8: spreads listings, serves ciphertexts, carries negotiation steps.

It only moves bytes; everything it asks or hands on goes through the
:class:`~enerdatx.market.handler.MarketHandler` in its settings (the peer's MarketService),
including where peers are: they are addressed by TrustChain key.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from ipv8.lazy_community import lazy_wrapper

from enerdatx.errors import ConfigurationError, EncodingError, MarketError, PeerUnreachableError
from enerdatx.market.formats import COMPLAINT, LISTING, WITHDRAWAL
from enerdatx.market.payload import (
    FetchRequestMessage,
    FetchResponseMessage,
    ListingsRequestMessage,
    NegotiationMessage,
    RecordMessage,
    RequestMessage,
)
from enerdatx.market.subscription_formats import SUBSCRIPTION_RECORD_TYPES
from enerdatx.overlay import AnswerBudget, Overlay, OverlaySettings, Pending
from enerdatx.trustchain import HalfBlock
from enerdatx.trustchain.keys import trustchain_key

if TYPE_CHECKING:
    from ipv8.peer import Peer as IPv8Peer

    from enerdatx.market.handler import MarketHandler

__all__ = ["MarketCommunity", "MarketSettings", "PendingFetch", "RECORD_TYPES", "CHUNK_SIZE"]

logger = logging.getLogger(__name__)

RECORD_TYPES = frozenset({LISTING, WITHDRAWAL, COMPLAINT}) | SUBSCRIPTION_RECORD_TYPES
# A chunk stays well below the 32 KiB packets peers accept.
CHUNK_SIZE = 16 * 1024
MAX_CHUNKS = 4096  # 64 MiB per data set


class MarketSettings(OverlaySettings):
    """What the market community is given at birth."""

    handler: MarketHandler | None = None
    """Decides on everything the community receives and says where peers are (a MarketService)."""

    fetch_timeout: float = 10.0
    """Seconds a fetch waits for its next chunk; it gives up then, or after ten times as long in all
    (a big ciphertext comes at the seller's answer rate, and a seller trickling chunks is let go)."""

    max_retry_interval: float = 2.0
    sync_interval: float = 1.0
    """Seconds between looks for neighbours we have not asked for their listings yet."""

    rate_per_second: float = 200.0
    rate_burst: int = 400
    """Token bucket per sender address, as in the TrustChain community: a flooder (each fetch
    request makes us send up to a whole ciphertext) is dropped before anything is decoded."""

    fetch_answer_rate: float = 2_097_152.0
    fetch_answer_burst: int = 8_388_608
    """Bytes of ciphertext chunks sent to one address per second, and at once. A fetch request's
    address can be forged, and a ~100-byte request for chunk 0 bought every chunk of a listed
    ciphertext (CIDs are public; up to 64 MiB) for any address, 200 times a second. A request
    beyond it is dropped ("fetch_budget") before the ciphertext is read, and an answer of every
    chunk stops where the budget runs out (the buyer asks for the rest, as for lost chunks).
    A ciphertext up to 8 MiB comes at once, the rest of a bigger one at most 2 MiB a second."""

    listings_answer_rate: float = 262_144.0
    listings_answer_burst: int = 1_048_576
    """Bytes of market records sent to one address, per second and at once, in answer to
    listings requests: a forged one bought all our records for any address. A request beyond
    it is dropped ("listings_budget") before the records are read. A peer asks each
    neighbour once, so a first sync never comes near it; 1 MiB is some 1,500 listings."""

    def check(self, name: str, value: Any) -> None:
        """As for every overlay, and an answer burst of at least one byte (a burst of 0 answered
        each address once, then never again)."""
        super().check(name, value)
        if name in ("fetch_answer_burst", "listings_answer_burst") and value < 1:
            raise ConfigurationError(f"MarketSettings {name} must be a whole number, 1 or more, not {value!r}")


# A fetch waits fetch_timeout for its next chunk, at most this many times (see MarketSettings).
FETCH_WINDOWS = 10
MAX_SYNCED_KEYS = 10_000  # peers remembered as asked for their records (see _mark_synced)


class PendingFetch(Pending):
    """A ciphertext on its way, chunk by chunk; ``total`` is known from the first answer."""

    PREFIX = "fetch"

    def __init__(self, overlay: Overlay, timeout: float) -> None:
        super().__init__(overlay, timeout)
        self.chunks: dict[int, bytes] = {}
        self.total: int | None = None


class MarketCommunity(Overlay):
    """Moves market records, ciphertext chunks, negotiation steps and standing requests."""

    community_id = bytes.fromhex("656478206d61726b65742076312e30a8c3f21d07")
    settings_class = MarketSettings

    def __init__(self, settings: MarketSettings) -> None:
        if settings.handler is None:
            raise TypeError("MarketCommunity needs settings.handler")
        for name in ("fetch_answer_burst", "listings_answer_burst"):
            settings.check(name, getattr(settings, name))  # fields may be set without update()
        super().__init__(settings)
        self.settings = settings
        self.handler: MarketHandler = settings.handler
        self._synced: set[bytes] = set()
        self.fetch_answers = AnswerBudget(settings.fetch_answer_rate, settings.fetch_answer_burst)
        self.listings_answers = AnswerBudget(settings.listings_answer_rate, settings.listings_answer_burst)
        self.add_message_handler(RecordMessage, self.on_record)
        self.add_message_handler(ListingsRequestMessage, self.on_listings_request)
        self.add_message_handler(FetchRequestMessage, self.on_fetch_request)
        self.add_message_handler(FetchResponseMessage, self.on_fetch_response)
        self.add_message_handler(NegotiationMessage, self.on_negotiation)
        self.add_message_handler(RequestMessage, self.on_request)
        self.register_task("sync", self._sync_new_neighbours, interval=settings.sync_interval, delay=0)

    # --- addressing ------------------------------------------------------------------

    def send_to(self, public_key: bytes, payload: Any) -> None:
        """Sign and send one message to the peer with TrustChain key ``public_key``."""
        peer = self.handler.peer_for(public_key)
        if peer is None:
            raise PeerUnreachableError(f"no address known for peer {public_key.hex()[:16]}")
        try:
            self.ez_send(peer, payload)
        except Exception:  # noqa: BLE001 - a closed endpoint is a lost datagram
            logger.debug("could not send to %s", peer.address, exc_info=True)

    def broadcast(self, payload: Any) -> None:
        """Send to every peer we know."""
        for key in self.handler.known_public_keys():
            self.send_to(key, payload)

    @property
    def unsynced(self) -> int:
        """Known peers we have not asked for their records yet."""
        return sum(key not in self._synced for key in self.handler.known_public_keys())

    def resync(self) -> None:
        """Ask every peer we know again for the market records we may lack (from the first gap
        in its chain): for a record lost on the way, which nobody sends again by itself."""
        for key in self.handler.known_public_keys():
            self._mark_synced(key)
            with contextlib.suppress(PeerUnreachableError):  # its address forgotten since: it asks us
                self.send_to(key, ListingsRequestMessage(self.handler.first_gap(key)))

    def _mark_synced(self, key: bytes) -> None:
        # Any sender's key is marked, and a sender may sign each request with a new key: forget
        # them all rather than grow without bound (the peers we know are then asked once more).
        if len(self._synced) >= MAX_SYNCED_KEYS:
            self._synced.clear()
        self._synced.add(key)

    def _sync_new_neighbours(self) -> None:
        for key in self.handler.known_public_keys():
            if key not in self._synced:
                self._mark_synced(key)
                self.send_to(key, ListingsRequestMessage(self.handler.first_gap(key)))

    # --- records ---------------------------------------------------------------------

    def publish(self, block: HalfBlock) -> None:
        """Spread one of our market records to everyone we know."""
        self.broadcast(RecordMessage(block.encode()))

    @lazy_wrapper(RecordMessage)
    def on_record(self, peer: IPv8Peer, payload: RecordMessage) -> None:
        """Hand a gossiped market record to the ledger (which validates and stores it)."""
        if trustchain_key(peer) is None:
            self.count_drop("malformed")
            return
        try:
            block = HalfBlock.decode_shared(payload.block)
        except EncodingError:
            self.count_drop("malformed")
            return
        if not (block.type in RECORD_TYPES and block.is_record) or not self.handler.receive_record(block):
            self.count_drop("invalid_record")

    @lazy_wrapper(ListingsRequestMessage)
    def on_listings_request(self, peer: IPv8Peer, payload: ListingsRequestMessage) -> None:
        """Send our market records to a peer that asks (a newcomer), unless the request's address
        has had its share of answers (listings_answer_rate)."""
        if not self.listings_answers.allows(peer.address):  # before the records are read
            self.count_drop("listings_budget")
            return
        sender = trustchain_key(peer)
        if sender is None:
            return
        for block in self.handler.own_records(payload.since):
            self._answer(self.listings_answers, peer, RecordMessage(block.encode()))
        if sender not in self._synced:  # a newcomer to us, or we to them: ask back at once
            self._mark_synced(sender)
            self.ez_send(peer, ListingsRequestMessage(self.handler.first_gap(sender)))

    # --- ciphertexts -----------------------------------------------------------------

    async def fetch(self, seller: bytes, cid: str) -> bytes:
        """Fetch the ciphertext ``cid`` from ``seller`` chunk by chunk; MarketError if it fails."""
        patience = self.settings.fetch_timeout
        fetch = self.open_request(PendingFetch(self, FETCH_WINDOWS * patience + 1.0))

        def ask_for_what_is_missing() -> None:
            wanted = [0] if fetch.total is None else [i for i in range(fetch.total) if i not in fetch.chunks]
            for index in wanted:  # chunk 0 asks for all of them
                self.send_to(seller, FetchRequestMessage(fetch.number, cid, index))

        try:
            for _ in range(FETCH_WINDOWS):
                held = len(fetch.chunks)
                with contextlib.suppress(TimeoutError):
                    await self.until(fetch.done, ask_for_what_is_missing, patience)
                if fetch.done.done() or len(fetch.chunks) == held:  # done, or nothing came for that long
                    break
            if not fetch.done.done():
                raise MarketError(f"{cid} was not served by {seller.hex()[:16]} in time")
        finally:
            self.close_request(fetch)
        if not fetch.total:
            raise MarketError(f"{seller.hex()[:16]} does not serve {cid}")
        return b"".join(fetch.chunks[i] for i in range(fetch.total))

    @lazy_wrapper(FetchRequestMessage)
    def on_fetch_request(self, peer: IPv8Peer, payload: FetchRequestMessage) -> None:
        """Serve one chunk (the first request gets every chunk) of a ciphertext we listed, while the
        request's address has budget left (fetch_answer_rate): the buyer asks again for the rest."""
        budget = self.fetch_answers
        if not budget.allows(peer.address):  # before the ciphertext is read
            self.count_drop("fetch_budget")
            return
        data = self.handler.ciphertext(payload.cid)
        if data is None:
            self._answer(budget, peer, FetchResponseMessage(payload.identifier, 0, 0, b""))
            return
        count = max(1, -(-len(data) // CHUNK_SIZE))
        wanted = range(count) if payload.chunk == 0 else [payload.chunk] if payload.chunk < count else []
        for index in wanted:
            if not budget.allows(peer.address):  # the answer stops here: the buyer asks for the rest
                self.count_drop("fetch_budget")
                break
            piece = data[index * CHUNK_SIZE:(index + 1) * CHUNK_SIZE]
            self._answer(budget, peer, FetchResponseMessage(payload.identifier, index, count, piece))

    def _answer(self, budget: AnswerBudget, peer: IPv8Peer, payload: Any) -> None:
        """Send one signed answer to ``peer`` and charge its bytes to its address in ``budget``."""
        budget.spend(peer.address, self.send_packet(peer, payload))

    @lazy_wrapper(FetchResponseMessage)
    def on_fetch_response(self, peer: IPv8Peer, payload: FetchResponseMessage) -> None:
        """Collect one chunk of a fetch we started (the content's CID is checked afterwards)."""
        fetch = self.find_request(PendingFetch, payload.identifier)
        if fetch is None or fetch.done.done() or payload.chunks > MAX_CHUNKS:
            return
        if fetch.total is None:
            fetch.total = payload.chunks
        if payload.chunks != fetch.total or (payload.chunks and payload.chunk >= payload.chunks):
            return
        if payload.chunks:
            fetch.chunks[payload.chunk] = payload.data
        if len(fetch.chunks) == fetch.total:
            fetch.done.set_result(None)

    # --- negotiation and standing requests --------------------------------------------

    def send_step(self, counterparty: bytes, step: bytes) -> None:
        """Send one encoded negotiation step."""
        self.send_to(counterparty, NegotiationMessage(step))

    @lazy_wrapper(NegotiationMessage)
    def on_negotiation(self, peer: IPv8Peer, payload: NegotiationMessage) -> None:
        """Pass a negotiation step, with its authenticated sender, to the handler."""
        sender = trustchain_key(peer)
        if sender is not None:
            self.handler.receive_step(sender, payload.step)

    def publish_request(self, request: bytes) -> None:
        """Spread an encoded standing request to everyone we know."""
        self.broadcast(RequestMessage(request))

    @lazy_wrapper(RequestMessage)
    def on_request(self, peer: IPv8Peer, payload: RequestMessage) -> None:
        """Pass a relayed standing request to the handler (it checks the buyer's signature)."""
        self.handler.receive_request(payload.request)
