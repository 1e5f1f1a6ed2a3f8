"""The negotiation desk and the board of standing requests: one peer's haggling and demand.

Both are network-free: what they send goes through the callbacks they are built with, and
what arrives is handed to :meth:`NegotiationDesk.receive` and :meth:`RequestBoard.receive`.
The formats (steps, signed requests) and the state machine are in
:mod:`enerdatx.market.negotiation`; docs/market.md specifies them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from enerdatx.conditions import wait_within
from enerdatx.crypto import Identity
from enerdatx.errors import EncodingError, MarketError, NegotiationError
from enerdatx.market.formats import MAX_PRICE, Listing
from enerdatx.market.market import expiry
from enerdatx.market.negotiation import (
    BuyerStrategy,
    Negotiation,
    SellerStrategy,
    StandingRequest,
    Step,
    decode_step,
    encode_step,
    match_requests,
)
from enerdatx.market.orderbook import Query

__all__ = ["Listings", "MAX_FOREIGN_REQUESTS", "MAX_NEGOTIATIONS", "NegotiationDesk", "RequestBoard"]

logger = logging.getLogger(__name__)

MAX_NEGOTIATIONS = 100_000
MAX_FOREIGN_REQUESTS = 10_000


class Listings(Protocol):
    """What the desk asks of an order book."""

    def get(self, listing_id: str) -> Listing:
        """The listing with that id; ListingNotFoundError if unknown."""

    def status(self, listing: Listing) -> str:
        """live, withdrawn, expired or fraudulent_seller."""


class NegotiationDesk:
    """Negotiations of one peer, as buyer and as seller; ``send(to, encoded step)`` reaches the other side."""

    def __init__(
        self,
        public_key: bytes,
        book: Listings,
        *,
        send: Callable[[bytes, bytes], None],
        seller_strategy: SellerStrategy | None = None,
    ) -> None:
        self.public_key = public_key
        self.book = book
        self.seller_strategy = seller_strategy or SellerStrategy()
        self.negotiations: dict[str, Negotiation] = {}
        self._send_bytes = send
        self._waiting: dict[str, asyncio.Future[Negotiation]] = {}
        self._buyer_strategies: dict[str, BuyerStrategy] = {}

    async def negotiate(self, listing_id: str, offer: int, max_price: int, *, timeout: float = 10.0) -> Negotiation:
        """Propose ``offer`` for a listing and haggle up to ``max_price``; the accepted or declined negotiation."""
        listing = self.book.get(listing_id)
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (offer, max_price)):  # "5": a TypeError
            raise NegotiationError(f"the offer and max_price are whole numbers of tokens, not {offer!r} and {max_price!r}")
        if not 0 < offer <= max_price:
            raise NegotiationError("the offer must be positive and at most max_price")
        if offer > MAX_PRICE:  # failed in the step's encoding, leaving a negotiation that never ends
            raise NegotiationError(f"the offer is at most 2**53-1 tokens, not {offer!r}")
        if listing.seller == self.public_key:  # the proposal went to ourselves: "no address known for peer"
            raise MarketError("a peer cannot buy its own listing")
        negotiation = Negotiation.new(listing, self.public_key)
        self.negotiations[negotiation.negotiation] = negotiation
        self._buyer_strategies[negotiation.negotiation] = BuyerStrategy(max_price)
        future: asyncio.Future[Negotiation] = asyncio.get_running_loop().create_future()
        self._waiting[negotiation.negotiation] = future
        self._send(negotiation, listing.seller, negotiation.step("propose", offer))
        try:
            return await wait_within(future, timeout)
        except TimeoutError:
            raise NegotiationError(f"the seller did not settle the negotiation in {timeout} s") from None
        finally:
            self._waiting.pop(negotiation.negotiation, None)

    def receive(self, sender: bytes, data: bytes) -> None:
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

    def agreed_price(self, negotiation_id: str, buyer: bytes, listing_id: str) -> int | None:
        """The price we accepted, or the counter-offer we made and still stand by (paying it accepts it)."""
        negotiation = self.negotiations.get(negotiation_id)
        if negotiation is None or negotiation.buyer != buyer or negotiation.listing.hex() != listing_id:
            return None
        if negotiation.state == "accepted" or negotiation.state == "open" and negotiation.offered_by == self.public_key:
            return negotiation.offer
        return None

    def _send(self, negotiation: Negotiation, to: bytes, step: Step) -> None:
        negotiation.apply(self.public_key, step)
        self._send_bytes(to, encode_step(step))

    def _open_as_seller(self, buyer: bytes, step: Step) -> Negotiation | None:
        listing = self.book.get(step.listing.hex())
        if listing.seller != self.public_key or len(self.negotiations) > MAX_NEGOTIATIONS:
            return None
        negotiation = Negotiation(step.negotiation, step.listing, buyer, self.public_key)
        self.negotiations[step.negotiation] = negotiation
        return negotiation

    def _answer(self, negotiation: Negotiation) -> None:
        if negotiation.seller == self.public_key:
            listing = self.book.get(negotiation.listing.hex())
            step = self.seller_strategy.respond(negotiation, listing, self.book.status(listing))
            self._send(negotiation, negotiation.buyer, step)
        else:
            step = self._buyer_strategies[negotiation.negotiation].respond(negotiation)
            self._send(negotiation, negotiation.seller, step)


class RequestBoard:
    """Standing requests: ours (signed and spread with ``publish``) and those relayed to us."""

    def __init__(
        self, identity: Identity, *, clock: Callable[[], int], publish: Callable[[bytes], None]
    ) -> None:
        self.identity = identity
        self.clock = clock
        self.requests: dict[str, StandingRequest] = {}
        self._publish = publish

    def post(self, query: Query, *, expires_in: int | None = None) -> StandingRequest:
        """Sign a standing request and spread it, so sellers and matchmakers see the demand."""
        if not isinstance(query, Query):  # a str failed with an AttributeError
            raise NegotiationError(f"a standing request is made of a Query, not {type(query).__name__}")
        now = self.clock()
        request = StandingRequest.create(self.identity, query, created=now, expires=expiry(now, expires_in))
        self.requests[request.request_id] = request
        self._publish(request.encode())
        return request

    def receive(self, data: bytes) -> None:
        """A standing request relayed by the network; kept if its buyer signed it."""
        try:
            request = StandingRequest.decode(data)
        except EncodingError:
            return
        if len(self.requests) < MAX_FOREIGN_REQUESTS:
            self.requests.setdefault(request.request_id, request)

    def live(self) -> list[StandingRequest]:
        """Every standing request we know that has not expired."""
        now = self.clock()
        return [r for r in self.requests.values() if not r.is_expired(now)]

    def matches(self, listings: list[Listing], *, own_only: bool = False) -> list[tuple[StandingRequest, Listing]]:
        """Live requests paired with the ``listings`` they accept, by price, then time."""
        if not isinstance(own_only, bool):  # own_only="no" is true: every other buyer's requests were dropped
            raise MarketError(f"own_only is True (only our requests) or False, not {own_only!r}")
        requests = [r for r in self.live() if not own_only or r.buyer == self.identity.public_key]
        return match_requests(requests, listings, self.clock())
