"""The signed formats of subscriptions: offers, agreements with consent terms, revocations, complaints.

A subscription sells a live feed period by period. Each period is an ordinary
``edx.listing`` whose descriptor names the offer and the period, settled by an ordinary
``edx.payment`` pair (docs/market.md): only the blocks below are new. Every format is
versioned (``"v": 1``), bounded and specified with test vectors in docs/market.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enerdatx.errors import EncodingError
from enerdatx.market.formats import (
    FORMAT_VERSION,
    HASH_SIZE,
    MAX_PRICE,
    MAX_TEXT,
    validate_descriptor,
)
from enerdatx.text import is_utf8

__all__ = [
    "MISSED_PERIOD",
    "OFFER",
    "REVOCATION",
    "SUBSCRIPTION",
    "SUBSCRIPTION_RECORD_TYPES",
    "Agreement",
    "Offer",
    "Revocation",
    "Terms",
    "missed_period_transaction",
    "offer_transaction",
    "parse_missed_period",
    "parse_offer",
    "parse_revocation",
    "parse_subscription",
    "parse_terms",
    "period_of",
    "revocation_transaction",
    "subscription_transaction",
    "terms_dict",
]

OFFER = "edx.sub.offer"  # the seller's record: what is sold, at what price per period, under which terms
SUBSCRIPTION = "edx.sub.agreement"  # the buyer proposes the terms, the seller countersigns them
REVOCATION = "edx.sub.revocation"  # either side's record: the subscription (or the offer) ends here
MISSED_PERIOD = "edx.sub.missed"  # the buyer's record: a period the seller owed was never listed
SUBSCRIPTION_RECORD_TYPES = frozenset({OFFER, REVOCATION, MISSED_PERIOD})

MAX_PERIOD_MS = 366 * 24 * 3600 * 1000
MIN_PERIOD_MS = 1000
MAX_PERIODS = 1_000_000
MAX_RETENTION_DAYS = 36_600


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise EncodingError(message)


def _check_hash(value: Any, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise EncodingError(f"{name} must be {HASH_SIZE} bytes")
    return value


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:  # type(): True is not an integer here
        raise EncodingError(f"{name} must be an integer in {low}..{high}")
    return value


def _check_text(value: Any, name: str) -> str:
    if isinstance(value, str) and not is_utf8(value):  # "\udcff": a bare codec error before
        raise EncodingError(f"{name} must be text that UTF-8 can encode")
    if not isinstance(value, str) or not 0 < len(value.encode("utf-8")) <= MAX_TEXT:
        raise EncodingError(f"{name} must be 1-256 bytes of text")
    return value


def _check_purpose(value: Any) -> str:
    """A purpose: text as ``_check_text`` wants it, neither blank nor with white space at either end.

    Both sides sign the terms and the seller countersigns only terms equal to its offer's, byte
    for byte: a purpose of spaces said nothing to consent to, and "research " was other terms
    than "research" that looked the same in every view.
    """
    text = _check_text(value, "purpose")
    if not text.strip():
        raise EncodingError(f"purpose must say what the data is for, not be white space only: {text[:64]!r}")
    if text != text.strip():
        raise EncodingError(f"purpose must not begin or end with white space: {text[:64]!r}")
    return text


def _check_fields(tx: Any, kind: str, fields: set[str]) -> None:
    _require(isinstance(tx, dict), f"a {kind} transaction is a mapping")
    _require(type(tx.get("v")) is int and tx["v"] == FORMAT_VERSION, f"unsupported {kind} version {tx.get('v')!r}")
    _require(set(tx) == fields, f"{kind} fields must be exactly {sorted(fields)}")


@dataclass(frozen=True)
class Terms:
    """Consent terms: what the buyer may do with the data (purpose, retention, resale)."""

    purpose: str
    retention_days: int
    resale: bool


def terms_dict(terms: Terms) -> dict[str, Any]:
    """The terms as they are signed."""
    _require(isinstance(terms.resale, bool), "resale is a bool")
    return {"purpose": _check_purpose(terms.purpose),
            "retention_days": _check_int(terms.retention_days, "retention_days", 1, MAX_RETENTION_DAYS),
            "resale": terms.resale}


def parse_terms(value: Any) -> Terms:
    """Read signed terms; EncodingError if malformed."""
    _require(isinstance(value, dict) and set(value) == {"purpose", "retention_days", "resale"},
             "terms are exactly purpose, retention_days, resale")
    _require(isinstance(value["resale"], bool), "resale is a bool")
    terms = Terms(value["purpose"], value["retention_days"], value["resale"])
    terms_dict(terms)
    return terms


@dataclass(frozen=True)
class Offer:
    """A subscription offer, as read from a seller's ``edx.sub.offer`` block."""

    offer_id: str  # hex of the offer block's hash
    seller: bytes
    descriptor: dict[str, Any]
    price: int  # per period
    period_ms: int
    start: int  # ms since the epoch (meter time): period n covers [start + n*period, start + (n+1)*period)
    periods: int  # how many periods the offer runs at most
    terms: Terms
    created: int

    @property
    def block_hash(self) -> bytes:
        """The offer block's hash, which agreements and period listings name."""
        return bytes.fromhex(self.offer_id)

    def period_bounds(self, period: int) -> tuple[int, int]:
        """(start, end) of period ``period`` in ms since the epoch."""
        return self.start + period * self.period_ms, self.start + (period + 1) * self.period_ms


def offer_transaction(descriptor: dict[str, Any], price: int, period_ms: int, start: int, periods: int,
                      terms: Terms) -> dict[str, Any]:
    """The transaction of an ``edx.sub.offer`` record (validated)."""
    tx = {"v": FORMAT_VERSION, "descriptor": validate_descriptor(descriptor), "price": price,
          "period_ms": period_ms, "start": start, "periods": periods, "terms": terms_dict(terms)}
    _validate_offer(tx)
    return tx


def _validate_offer(tx: Any) -> None:
    _check_fields(tx, "offer", {"v", "descriptor", "price", "period_ms", "start", "periods", "terms"})
    validate_descriptor(tx["descriptor"])
    _check_int(tx["price"], "price", 1, MAX_PRICE)
    _check_int(tx["period_ms"], "period_ms", MIN_PERIOD_MS, MAX_PERIOD_MS)
    _check_int(tx["start"], "start", 0, MAX_PRICE)
    _check_int(tx["periods"], "periods", 1, MAX_PERIODS)
    parse_terms(tx["terms"])


def parse_offer(block: Any) -> Offer:
    """Read an Offer from an ``edx.sub.offer`` block; EncodingError if malformed."""
    _require(block.type == OFFER, f"not an offer block: {block.type}")
    tx = block.transaction
    _validate_offer(tx)
    return Offer(block.hash.hex(), block.public_key, dict(tx["descriptor"]), tx["price"], tx["period_ms"],
                 tx["start"], tx["periods"], parse_terms(tx["terms"]), block.timestamp)


@dataclass(frozen=True)
class Agreement:
    """A buyer's subscription to an offer: the terms it signed, from its first period on."""

    subscription_id: str  # hex of the buyer's proposal hash
    offer: bytes
    buyer: bytes
    seller: bytes
    terms: Terms
    first_period: int


def subscription_transaction(offer_hash: bytes, terms: Terms, first_period: int) -> dict[str, Any]:
    """The transaction of the buyer's ``edx.sub.agreement`` proposal (the seller countersigns it as is)."""
    tx = {"v": FORMAT_VERSION, "offer": _check_hash(offer_hash, "offer"), "terms": terms_dict(terms),
          "first_period": first_period}
    parse_subscription(tx)
    return tx


def parse_subscription(tx: Any) -> tuple[bytes, Terms, int]:
    """(offer hash, terms, first period) of an agreement transaction; EncodingError if malformed."""
    _check_fields(tx, "subscription", {"v", "offer", "terms", "first_period"})
    return (_check_hash(tx["offer"], "offer"), parse_terms(tx["terms"]),
            _check_int(tx["first_period"], "first_period", 0, MAX_PERIODS))


@dataclass(frozen=True)
class Revocation:
    """The end of a subscription (or of a whole offer), signed by the side that ends it."""

    target: bytes  # the buyer's agreement proposal hash, or the offer hash
    by: bytes
    reason: str
    timestamp: int


def revocation_transaction(target: bytes, reason: str) -> dict[str, Any]:
    """The transaction of an ``edx.sub.revocation`` record."""
    tx = {"v": FORMAT_VERSION, "target": _check_hash(target, "target"), "reason": _check_text(reason, "reason")}
    return tx


def parse_revocation(block: Any) -> Revocation:
    """Read a Revocation from an ``edx.sub.revocation`` block; EncodingError if malformed."""
    _require(block.type == REVOCATION, f"not a revocation block: {block.type}")
    tx = block.transaction
    _check_fields(tx, "revocation", {"v", "target", "reason"})
    return Revocation(_check_hash(tx["target"], "target"), block.public_key, _check_text(tx["reason"], "reason"),
                      block.timestamp)


MAX_AGREEMENT_BYTES = 4096


def missed_period_transaction(agreement: bytes, period: int) -> dict[str, Any]:
    """The transaction of the buyer's ``edx.sub.missed`` complaint: the seller never listed ``period``.

    ``agreement`` is the seller's countersigned agreement half-block, encoded: the complaint
    carries the seller's own signature on the obligation, so anyone can check it alone.
    """
    _require(isinstance(agreement, bytes) and 0 < len(agreement) <= MAX_AGREEMENT_BYTES, "bad agreement block")
    return {"v": FORMAT_VERSION, "agreement": agreement, "period": _check_int(period, "period", 0, MAX_PERIODS)}


def parse_missed_period(block: Any) -> tuple[bytes, int]:
    """(encoded seller agreement, period) of an ``edx.sub.missed`` block; EncodingError if malformed."""
    _require(block.type == MISSED_PERIOD, f"not a missed-period block: {block.type}")
    tx = block.transaction
    _check_fields(tx, "missed period", {"v", "agreement", "period"})
    _require(isinstance(tx["agreement"], bytes) and 0 < len(tx["agreement"]) <= MAX_AGREEMENT_BYTES,
             "bad agreement block")
    return tx["agreement"], _check_int(tx["period"], "period", 0, MAX_PERIODS)


def period_of(descriptor: dict[str, Any]) -> tuple[str, int] | None:
    """(offer id, period) if a listing's descriptor names a subscription period, else None."""
    offer, period = descriptor.get("subscription"), descriptor.get("period")
    if isinstance(offer, str) and len(offer) == 2 * HASH_SIZE and type(period) is int and period >= 0:
        return offer, period
    return None
