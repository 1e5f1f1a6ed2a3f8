"""The market as a service of a Peer: a Market wired to IPv8, negotiation and standing requests.

``peer.add_service(MarketService())`` gives a peer its market: the data keys live in
``market.sqlite`` and the ciphertexts in the peer's content store (``ipfs/``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from enerdatx.errors import EncodingError, MarketError, NegotiationError
from enerdatx.market.community import RECORD_TYPES, MarketCommunity, MarketSettings
from enerdatx.market.formats import Listing
from enerdatx.market.keyring import Keyring
from enerdatx.market.market import Market, Trade
from enerdatx.market.negotiation import (
    BuyerStrategy,
    Negotiation,
    SellerStrategy,
    StandingRequest,
    decode_step,
    encode_step,
    match_requests,
)
from enerdatx.market.orderbook import LIVE, Query
from enerdatx.market.wallet import DEFAULT_GRANT

if TYPE_CHECKING:
    from enerdatx.peer import Peer

__all__ = ["MarketService"]

logger = logging.getLogger(__name__)

MAX_FOREIGN_REQUESTS = 10_000


class MarketService:
    """One peer's market on the network: sell, search, negotiate, post requests, buy."""

    def __init__(
        self,
        *,
        grant: int = DEFAULT_GRANT,
        content: Any = None,
        seller_strategy: SellerStrategy | None = None,
        propose_timeout: float = 10.0,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.grant = grant
        self.seller_strategy = seller_strategy or SellerStrategy()
        self.propose_timeout = propose_timeout
        self._content = content
        self._settings = dict(settings or {})
        self.negotiations: dict[str, Negotiation] = {}
        self._waiting: dict[str, asyncio.Future[Negotiation]] = {}
        self._buyer_strategies: dict[str, BuyerStrategy] = {}
        self.requests: dict[str, StandingRequest] = {}
        self.peer: Peer
        self.market: Market
        self.community: MarketCommunity

    def attach(self, peer: Peer) -> None:
        """Open the peer's market state and start the market community on its IPv8."""
        self.peer = peer
        content = self._content if self._content is not None else peer.content
        keyring = Keyring(peer.directory / "market.sqlite", fsync=getattr(peer.store, "fsync", True))
        self.market = Market(
            peer.ledger, content, keyring=keyring, grant=self.grant, propose=self._propose, fetch=self._fetch
        )
        self.market.negotiated_price = self._negotiated_price
        settings = MarketSettings(
            my_peer=peer.community.my_peer, endpoint=peer.ipv8.endpoint, network=peer.ipv8.network, service=self
        )
        for name, value in self._settings.items():
            if not hasattr(MarketSettings, name):
                raise TypeError(f"unknown market setting {name!r}")
            setattr(settings, name, value)
        self.community = MarketCommunity(settings)
        peer.add_overlay(self.community)
        peer.ledger.subscribe(self._on_block)

    async def close(self) -> None:
        """Stop the community and close the keyring."""
        if self.community in self.peer.ipv8.overlays:
            self.peer.ipv8.overlays.remove(self.community)
            await self.community.unload()
        self.market.keyring.close()

    # --- the facade ------------------------------------------------------------------

    @property
    def public_key(self) -> bytes:
        """This peer's public key."""
        return self.peer.public_key

    def sell(self, dataset: Any, price: int, *, expires_in: int | None = None) -> Listing:
        """List a data set (anything with ``.plaintext`` and ``.descriptor``, e.g. a meter DataSet)."""
        return self.market.sell(dataset.plaintext, dataset.descriptor, price, expires_in=expires_in)

    def search(self, query: Query | None = None, **fields: Any) -> list[Listing]:
        """Live listings matching a query, cheapest first, then oldest."""
        return self.market.book.search(query, **fields)

    async def buy(
        self, listing_id: str, *, amount: int | None = None, negotiation: str | None = None, again: bool = False
    ) -> Trade:
        """Pay for a listing and get its verified data (see Market.buy)."""
        return await self.market.buy(listing_id, amount=amount, negotiation=negotiation, again=again)

    # --- the market's ways out ---------------------------------------------------------

    async def _propose(self, counterparty: bytes, block_type: str, transaction: dict) -> tuple[Any, Any]:
        return await self.peer.community.propose(counterparty, block_type, transaction, timeout=self.propose_timeout)

    async def _fetch(self, listing: Listing) -> bytes:
        return await self.community.fetch(listing.seller, listing.cid)

    def _on_block(self, block: Any) -> None:
        if block.public_key == self.public_key and block.type in RECORD_TYPES and block.is_record:
            self.community.publish(block)

    def receive_record(self, block: Any) -> None:
        """A market record from the network: the ledger validates and stores it, the book learns it."""
        if self.peer.ledger.store.get_by_hash(block.hash) is None:
            self.peer.ledger.receive(block)

    def first_gap(self, public_key: bytes) -> int:
        """The first sequence number of that chain we lack: we hold everything below it."""
        store = self.peer.ledger.store
        held = store.held_sequence_numbers(public_key, 1, store.latest_sequence_number(public_key))
        return next((i for i, seq in enumerate(held, start=1) if seq != i), len(held) + 1)

    def own_records(self, since: int = 1) -> list[Any]:
        """Our market records from sequence number ``since`` (what a newcomer asks for)."""
        return [b for b in self.peer.ledger.store.chain(self.public_key, max(1, since)) if b.type in RECORD_TYPES]

    def ciphertext(self, cid: str) -> bytes | None:
        """The ciphertext of one of our listings, or None: we serve nothing else."""
        for listing in self.market.book.search(seller=self.public_key, include_unavailable=True):
            if listing.cid == cid:
                return self.market.content.cat(cid)
        return None

    # --- negotiation -------------------------------------------------------------------

    async def negotiate(self, listing_id: str, offer: int, max_price: int, *, timeout: float = 10.0) -> Negotiation:
        """Propose ``offer`` for a listing and haggle up to ``max_price``; the accepted or declined negotiation."""
        listing = self.market.book.get(listing_id)
        if not 0 < offer <= max_price:
            raise NegotiationError("the offer must be positive and at most max_price")
        negotiation = Negotiation.new(listing, self.public_key)
        self.negotiations[negotiation.negotiation] = negotiation
        self._buyer_strategies[negotiation.negotiation] = BuyerStrategy(max_price)
        future: asyncio.Future[Negotiation] = asyncio.get_running_loop().create_future()
        self._waiting[negotiation.negotiation] = future
        self._send(negotiation, listing.seller, negotiation.step("propose", offer))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise NegotiationError(f"the seller did not settle the negotiation in {timeout} s") from None
        finally:
            self._waiting.pop(negotiation.negotiation, None)

    async def negotiate_and_buy(self, listing_id: str, offer: int, max_price: int) -> Trade:
        """Negotiate a price, then buy at it; NegotiationError if the seller declines."""
        negotiation = await self.negotiate(listing_id, offer, max_price)
        if negotiation.state != "accepted":
            raise NegotiationError(f"the seller declined: {negotiation.reason}")
        return await self.buy(listing_id, amount=negotiation.offer, negotiation=negotiation.negotiation)

    def _send(self, negotiation: Negotiation, to: bytes, step: Any) -> None:
        negotiation.apply(self.public_key, step)
        self.community.send_step(to, encode_step(step))

    def receive_step(self, sender: bytes, data: bytes) -> None:
        """A negotiation step from ``sender`` (authenticated by IPv8): advance and answer it."""
        try:
            step = decode_step(data)
            negotiation = self.negotiations.get(step.negotiation)
            if negotiation is None and step.step == "propose":
                negotiation = self._open_as_seller(sender, step)
            if negotiation is None:
                return
            negotiation.apply(sender, step)
            if negotiation.state == "open":
                self._answer(negotiation)
        except (EncodingError, NegotiationError, MarketError) as exc:
            logger.info("ignored negotiation step from %s: %s", sender.hex()[:16], exc)
            return
        future = self._waiting.get(negotiation.negotiation)
        if future is not None and not future.done() and negotiation.state in ("accepted", "declined"):
            future.set_result(negotiation)

    def _open_as_seller(self, buyer: bytes, step: Any) -> Negotiation | None:
        listing = self.market.book.get(step.listing.hex())
        if listing.seller != self.public_key or len(self.negotiations) > 100_000:
            return None
        negotiation = Negotiation(step.negotiation, step.listing, buyer, self.public_key)
        self.negotiations[step.negotiation] = negotiation
        return negotiation

    def _answer(self, negotiation: Negotiation) -> None:
        if negotiation.seller == self.public_key:
            listing = self.market.book.get(negotiation.listing.hex())
            step = self.seller_strategy.respond(negotiation, listing, self.market.book.status(listing))
            self._send(negotiation, negotiation.buyer, step)
        else:
            step = self._buyer_strategies[negotiation.negotiation].respond(negotiation)
            self._send(negotiation, negotiation.seller, step)

    def _negotiated_price(self, negotiation_id: str, buyer: bytes, listing_id: str) -> int | None:
        # The price we accepted, or the counter-offer we made and still stand by: paying it accepts it.
        negotiation = self.negotiations.get(negotiation_id)
        if negotiation is None or negotiation.buyer != buyer or negotiation.listing.hex() != listing_id:
            return None
        if negotiation.state == "accepted" or negotiation.state == "open" and negotiation.offered_by == self.public_key:
            return negotiation.offer
        return None

    # --- standing requests and matching ---------------------------------------------------

    def post_request(self, query: Query, *, expires_in: int | None = None) -> StandingRequest:
        """Post a standing request (signed) and spread it, so sellers and matchmakers see the demand."""
        now = self.market.clock()
        request = StandingRequest.create(
            self.peer.identity, query, created=now, expires=None if expires_in is None else now + expires_in
        )
        self.requests[request.request_id] = request
        self.community.publish_request(request.encode())
        return request

    def receive_request(self, data: bytes) -> None:
        """A standing request relayed by the network; kept if its buyer signed it."""
        try:
            request = StandingRequest.decode(data)
        except EncodingError:
            return
        if len(self.requests) < MAX_FOREIGN_REQUESTS:
            self.requests.setdefault(request.request_id, request)

    def live_requests(self) -> list[StandingRequest]:
        """Every standing request we know that has not expired."""
        now = self.market.clock()
        return [r for r in self.requests.values() if not r.is_expired(now)]

    def matches(self, *, own_only: bool = False) -> list[tuple[StandingRequest, Listing]]:
        """Standing requests paired with the live listings they accept, by price, then time."""
        requests = [r for r in self.live_requests() if not own_only or r.buyer == self.public_key]
        return match_requests(requests, self.market.book.search(), self.market.clock())

    async def fill_requests(self) -> list[Trade]:
        """Buy, for each of our standing requests, the best matching listing not bought yet."""
        bought = {p.listing_id for p in self.market.purchases()}
        served: set[str] = set()
        trades = []
        for request, listing in self.matches(own_only=True):
            if request.request_id in served or listing.listing_id in bought:
                continue
            if self.market.book.status(listing) != LIVE:
                continue
            trades.append(await self.buy(listing.listing_id))
            served.add(request.request_id)
            bought.add(listing.listing_id)
        return trades
