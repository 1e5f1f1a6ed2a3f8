"""Negotiation as in XChange: propose, counter, accept, decline (with reasons), and standing requests.

The state machine is network-free: each step is checked against whose turn it is and
what was offered last. Steps travel in IPv8-signed packets; standing requests are
signed by their buyer so that anyone may relay them. Formats: docs/market.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from enerdatx.crypto import Identity, verify_signature
from enerdatx.errors import EncodingError, MarketError, NegotiationError
from enerdatx.market.formats import FORMAT_VERSION, MAX_PRICE, Listing
from enerdatx.market.orderbook import Query
from enerdatx.trustchain import decode_transaction, encode_transaction

__all__ = [
    "STEPS",
    "MAX_ROUNDS",
    "Step",
    "Negotiation",
    "SellerStrategy",
    "BuyerStrategy",
    "StandingRequest",
    "encode_step",
    "decode_step",
    "match_requests",
]

STEPS = ("propose", "counter", "accept", "decline")
MAX_ROUNDS = 8
MAX_MESSAGE = 4096
REQUEST_CONTEXT = b"enerdatx:request:v1\n"


def _dumps(value: dict[str, Any]) -> bytes:
    # The canonical CBOR of TrustChain transactions: one value, one encoding.
    return encode_transaction(value)


def _loads(data: bytes, what: str) -> dict[str, Any]:
    if len(data) > MAX_MESSAGE:
        raise EncodingError(f"{what} is larger than {MAX_MESSAGE} bytes")
    value = decode_transaction(data)  # refuses anything but a canonical CBOR map
    if type(value.get("v")) is not int or value["v"] != FORMAT_VERSION:  # True == 1 in Python
        raise EncodingError(f"unsupported {what} version {value.get('v')!r}")
    return value


@dataclass(frozen=True)
class Step:
    """One negotiation message: who does what to which negotiation, at which price."""

    negotiation: str  # 32 hex digits, chosen by the buyer
    listing: bytes  # the listing block's hash
    step: str
    price: int | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.step not in STEPS:
            raise EncodingError(f"unknown negotiation step {self.step!r}")
        if not (isinstance(self.negotiation, str) and len(self.negotiation) == 32):
            raise EncodingError("a negotiation id is 32 hex digits")
        if not (isinstance(self.listing, bytes) and len(self.listing) == 32):
            raise EncodingError("a listing hash is 32 bytes")
        needs_price = self.step in ("propose", "counter", "accept")
        price_ok = type(self.price) is int and 0 < self.price <= MAX_PRICE  # type(): True is no price
        if (not price_ok) if needs_price else (self.price is not None):
            raise EncodingError(f"{self.step} {'needs a positive integer price' if needs_price else 'has no price'}")
        if (self.step == "decline") != (self.reason is not None):
            raise EncodingError("a decline, and only a decline, carries a reason")
        if self.reason is not None and (not isinstance(self.reason, str) or len(self.reason) > 64):
            raise EncodingError("a reason is a short string")


def encode_step(step: Step) -> bytes:
    """The canonical CBOR of a negotiation step."""
    return _dumps({
        "v": FORMAT_VERSION, "negotiation": step.negotiation, "listing": step.listing,
        "step": step.step, "price": step.price, "reason": step.reason,
    })


def decode_step(data: bytes) -> Step:
    """Parse a negotiation step; EncodingError on anything malformed."""
    value = _loads(data, "negotiation step")
    if set(value) != {"v", "negotiation", "listing", "step", "price", "reason"}:
        raise EncodingError("negotiation step fields")
    return Step(value["negotiation"], value["listing"], value["step"], value["price"], value["reason"])


@dataclass
class Negotiation:
    """The state of one negotiation between a buyer and a seller about one listing."""

    negotiation: str
    listing: bytes
    buyer: bytes
    seller: bytes
    state: str = "new"  # new -> open -> accepted | declined
    offer: int | None = None  # the price last offered
    offered_by: bytes | None = None
    rounds: int = 0
    reason: str | None = None
    history: list[tuple[bytes, Step]] = field(default_factory=list)

    @classmethod
    def new(cls, listing: Listing, buyer: bytes) -> Negotiation:
        """A fresh negotiation with a random id."""
        return cls(os.urandom(16).hex(), listing.block_hash, buyer, listing.seller)

    def apply(self, sender: bytes, step: Step) -> None:
        """Advance by one step from ``sender``; NegotiationError if it is not allowed now."""
        if step.negotiation != self.negotiation or step.listing != self.listing:
            raise NegotiationError("the step belongs to another negotiation")
        if sender not in (self.buyer, self.seller):
            raise NegotiationError("only the buyer and the seller negotiate")
        if self.state in ("accepted", "declined"):
            raise NegotiationError(f"the negotiation is {self.state} already")
        if step.step == "propose":
            if self.state != "new" or sender != self.buyer:
                raise NegotiationError("only the buyer proposes, and only first")
        elif self.state == "new":
            raise NegotiationError("a negotiation starts with the buyer's proposal")
        elif sender == self.offered_by:
            raise NegotiationError("it is the other party's turn")
        if step.step in ("propose", "counter"):
            if self.rounds >= MAX_ROUNDS:
                raise NegotiationError(f"more than {MAX_ROUNDS} rounds")
            self.state, self.offer, self.offered_by = "open", step.price, sender
            self.rounds += 1
        elif step.step == "accept":
            if step.price != self.offer:
                raise NegotiationError(f"accepted {step.price}, but the offer is {self.offer}")
            self.state = "accepted"
        else:
            self.state, self.reason = "declined", step.reason
        self.history.append((sender, step))

    def step(self, kind: str, price: int | None = None, reason: str | None = None) -> Step:
        """Build a step of this negotiation."""
        return Step(self.negotiation, self.listing, kind, price, reason)


@dataclass(frozen=True)
class SellerStrategy:
    """Accept offers of at least ``floor`` (a fraction of the asking price), else meet halfway."""

    floor: float = 0.8

    def respond(self, negotiation: Negotiation, listing: Listing, status: str) -> Step:
        """The seller's answer to the buyer's latest offer."""
        if status != "live":
            return negotiation.step("decline", reason=f"listing_{status}")
        lowest = max(1, -(-int(listing.price * self.floor * 1000) // 1000))
        offer = negotiation.offer or 0
        if offer >= lowest:
            return negotiation.step("accept", offer)
        if negotiation.rounds >= MAX_ROUNDS - 1:
            return negotiation.step("decline", reason="price_too_low")
        asked = [s.price for who, s in negotiation.history if who == negotiation.seller and s.price]
        last_ask = asked[-1] if asked else listing.price
        return negotiation.step("counter", max(lowest, (offer + last_ask + 1) // 2))


@dataclass(frozen=True)
class BuyerStrategy:
    """Accept counters up to ``max_price``, else meet halfway, never above ``max_price``."""

    max_price: int

    def respond(self, negotiation: Negotiation) -> Step:
        """The buyer's answer to the seller's latest counter-offer."""
        offer = negotiation.offer or 0
        if offer <= self.max_price:
            return negotiation.step("accept", offer)
        if negotiation.rounds >= MAX_ROUNDS - 1:
            return negotiation.step("decline", reason="too_expensive")
        bids = [s.price for who, s in negotiation.history if who == negotiation.buyer and s.price]
        last_bid = bids[-1] if bids else 1
        return negotiation.step("counter", min(self.max_price, (offer + last_bid) // 2))


@dataclass(frozen=True)
class StandingRequest:
    """A buyer's standing request: data sets matching ``query`` at ``max_price`` or less."""

    request_id: str  # 32 hex digits
    buyer: bytes
    query: Query
    created: int
    expires: int | None
    signature: bytes = b""

    @classmethod
    def create(cls, identity: Identity, query: Query, *, created: int, expires: int | None = None) -> StandingRequest:
        """A new request signed by ``identity``."""
        if query.max_price is None:
            raise NegotiationError("a standing request names its max_price")
        if expires is not None and (type(expires) is not int or not created < expires < 2**63):
            raise MarketError("a standing request expires a positive number of milliseconds from now")
        unsigned = cls(os.urandom(16).hex(), identity.public_key, query, created, expires)
        return cls(**{**unsigned.__dict__, "signature": identity.sign(REQUEST_CONTEXT + unsigned.body())})

    def body(self) -> bytes:
        """The canonical CBOR that the buyer signs."""
        q = self.query
        return _dumps({
            "v": FORMAT_VERSION, "request": self.request_id, "buyer": self.buyer, "created": self.created,
            "expires": self.expires, "kind": q.kind, "start": q.start, "end": q.end,
            "resolution": q.resolution, "area": q.area, "household_type": q.household_type,
            "max_price": q.max_price,
        })

    def encode(self) -> bytes:
        """Body and signature, as relayed between peers."""
        return _dumps({"v": FORMAT_VERSION, "body": self.body(), "signature": self.signature})

    @classmethod
    def decode(cls, data: bytes) -> StandingRequest:
        """Parse and verify a relayed request; EncodingError if malformed or not signed by its buyer."""
        outer = _loads(data, "standing request")
        body, signature = outer.get("body"), outer.get("signature")
        if not isinstance(body, bytes) or not isinstance(signature, bytes):
            raise EncodingError("a standing request is a body and a signature")
        v = _loads(body, "standing request body")
        try:
            query = Query(kind=v["kind"], start=v["start"], end=v["end"], resolution=v["resolution"],
                          area=v["area"], household_type=v["household_type"], max_price=v["max_price"])
            request = cls(v["request"], v["buyer"], query, v["created"], v["expires"], signature)
        except (KeyError, TypeError, ValueError, MarketError) as exc:
            raise EncodingError(f"bad standing request: {exc}") from exc
        if not isinstance(request.buyer, bytes) or request.body() != body:
            raise EncodingError("standing request fields")
        if not verify_signature(request.buyer, REQUEST_CONTEXT + body, signature):
            raise EncodingError("the standing request is not signed by its buyer")
        return request

    def is_expired(self, now_ms: int) -> bool:
        """True once the request's expiry has passed."""
        return self.expires is not None and now_ms >= self.expires


def match_requests(requests: list[StandingRequest], listings: list[Listing], now_ms: int) -> list[tuple[StandingRequest, Listing]]:
    """Pair each live request with every live listing it accepts: cheapest first, then oldest.

    Requests are served oldest first; a buyer's own listings are never matched to it.
    """
    pairs: list[tuple[StandingRequest, Listing]] = []
    for request in sorted(requests, key=lambda r: (r.created, r.request_id)):
        if request.is_expired(now_ms):
            continue
        candidates = [x for x in listings if x.seller != request.buyer and request.query.matches(x)]
        candidates.sort(key=lambda x: (x.price, x.created, x.listing_id))
        pairs.extend((request, listing) for listing in candidates)
    return pairs
