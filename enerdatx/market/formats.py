"""The market's signed and hashed formats: block transactions, commitments, sealed openings.

Every format here is versioned (``"v": 1``), bounded in size and specified with test
vectors in docs/market.md. Block transactions are encoded and signed by TrustChain;
this module only builds and checks their contents.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enerdatx.errors import EncodingError
from enerdatx.text import is_utf8

__all__ = [
    "FORMAT_VERSION",
    "LISTING",
    "WITHDRAWAL",
    "PAYMENT",
    "COMPLAINT",
    "RELEASE",
    "SHARE",
    "Share",
    "share_transaction",
    "parse_share",
    "COMPLAINT_REASONS",
    "COMMITMENT_DOMAIN",
    "SALT_SIZE",
    "OPENING_SIZE",
    "MAX_PRICE",
    "PRIVACY_KEYS",
    "UNION_KEYS",
    "Listing",
    "Payment",
    "commitment",
    "make_opening",
    "split_opening",
    "validate_descriptor",
    "listing_transaction",
    "parse_listing",
    "withdrawal_transaction",
    "parse_withdrawal",
    "payment_transaction",
    "parse_payment",
    "complaint_transaction",
    "release_transaction",
    "parse_release",
]

FORMAT_VERSION = 1

# Block types; TrustChain treats them as opaque ASCII names.
LISTING = "edx.listing"
WITHDRAWAL = "edx.withdrawal"
PAYMENT = "edx.payment"
COMPLAINT = "edx.complaint"
RELEASE = "edx.release"
MAX_TIMESTAMP = 2**63 - 1
SHARE = "edx.share"  # a share of a sale's revenue, passed on to a data union's member

COMMITMENT_DOMAIN = b"enerdatx/commitment/v1\x00"
SALT_SIZE = 32
KEY_SIZE = 32
OPENING_SIZE = KEY_SIZE + SALT_SIZE
HASH_SIZE = 32

# Amounts are integers; the bound keeps them exact in every JSON reader (2**53).
MAX_PRICE = 2**53 - 1
MAX_DESCRIPTOR_ENTRIES = 32
MAX_TEXT = 256
MAX_CID = 128
MAX_NEGOTIATION_ID = 64

# Optional descriptor entries with a fixed shape (docs/privacy.md): the privacy summary of
# enerdatx.privacy, and what a data union's aggregate is. Each names its method version.
PRIVACY_KEYS = ("privacy_score", "privacy_method")
_PRIVACY_METHOD = re.compile(r"^edx-privacy/[1-9][0-9]{0,3}$")
UNION_KEYS = ("union_terms", "union_members", "aggregate", "dp_epsilon")
# A differential-privacy epsilon as written in descriptors and union terms: plain decimal text.
DP_EPSILON = re.compile(r"^(?:0|[1-9][0-9]{0,5})\.[0-9]{1,6}$")

COMPLAINT_REASONS = (
    "key_does_not_open",  # the sealed box in the agreement does not open with our identity
    "bad_opening",  # it opens, but is not a 32-byte key and a 32-byte salt
    "ciphertext_unavailable",  # nobody served the bytes of the listed CID
    "ciphertext_does_not_decrypt",  # the key does not open the ciphertext (tampered or wrong key)
    "commitment_mismatch",  # it decrypts, but not to the committed plaintext
)


def commitment(salt: bytes, plaintext: bytes) -> bytes:
    """The 32-byte commitment to ``plaintext``: sha256(domain || salt || plaintext)."""
    if len(salt) != SALT_SIZE:
        raise ValueError(f"a commitment salt is {SALT_SIZE} bytes, not {len(salt)}")
    return hashlib.sha256(COMMITMENT_DOMAIN + salt + plaintext).digest()


def make_opening(key: bytes, salt: bytes) -> bytes:
    """What the seller seals to a buyer: the data key followed by the commitment salt."""
    if len(key) != KEY_SIZE or len(salt) != SALT_SIZE:
        raise ValueError("an opening is a 32-byte key and a 32-byte salt")
    return key + salt


def split_opening(opening: bytes) -> tuple[bytes, bytes]:
    """Split an opening into (key, salt); EncodingError if it has the wrong size."""
    if len(opening) != OPENING_SIZE:
        raise EncodingError(f"an opening is {OPENING_SIZE} bytes, not {len(opening)}")
    return opening[:KEY_SIZE], opening[KEY_SIZE:]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise EncodingError(message)


def _is_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return is_utf8(value) and len(value.encode("utf-8")) <= MAX_TEXT
    return value is None or isinstance(value, (bool, int)) and abs(value) <= MAX_PRICE


def validate_descriptor(descriptor: Any) -> dict[str, Any]:
    """Check a public descriptor: at most 32 str keys; values str/int/bool/None or short lists of them."""
    _require(isinstance(descriptor, dict), "a descriptor is a mapping")
    _require(len(descriptor) <= MAX_DESCRIPTOR_ENTRIES, f"a descriptor has at most {MAX_DESCRIPTOR_ENTRIES} entries")
    clean: dict[str, Any] = {}
    for key, value in descriptor.items():
        _require(isinstance(key, str) and 0 < len(key) <= 64, f"bad descriptor key {key!r}")
        if isinstance(value, (list, tuple)):
            _require(len(value) <= 16 and all(_is_scalar(v) for v in value), f"bad descriptor list {key!r}")
            value = list(value)
        else:
            _require(_is_scalar(value), f"descriptor value {key!r} must be str/int/bool/None (no floats), got {value!r}")
        clean[key] = value
    _validate_summaries(clean)
    return clean


def _validate_summaries(descriptor: dict[str, Any]) -> None:
    """The privacy summary and the union entries, when present, have exactly their documented shape."""
    present = [key for key in PRIVACY_KEYS if key in descriptor]
    if present:
        _require(len(present) == len(PRIVACY_KEYS), "a privacy summary has both privacy_score and privacy_method")
        score, method = descriptor["privacy_score"], descriptor["privacy_method"]
        _require(type(score) is int and 0 <= score <= 100, "privacy_score is an integer in 0..100")
        _require(isinstance(method, str) and bool(_PRIVACY_METHOD.match(method)), "privacy_method is edx-privacy/N")
    if "union_terms" in descriptor:
        terms, members = descriptor["union_terms"], descriptor.get("union_members")
        _require(isinstance(terms, str) and len(terms) == 64 and all(c in "0123456789abcdef" for c in terms),
                 "union_terms is the hex sha256 of the union's signed terms")
        _require(type(members) is int and members >= 2, "union_members is an integer >= 2")
        _require(descriptor.get("aggregate") in ("sum", "mean"), "a union's aggregate is sum or mean")
        epsilon = descriptor.get("dp_epsilon")
        _require(epsilon is None or isinstance(epsilon, str) and bool(DP_EPSILON.match(epsilon)),
                 "dp_epsilon is a decimal string such as '1.0', or absent")
    else:
        _require(not any(key in descriptor for key in UNION_KEYS[1:]), "union entries without union_terms")


def _check_amount(value: Any, name: str) -> int:
    if type(value) is not int or not 0 < value <= MAX_PRICE:  # type(): True is not an amount
        raise EncodingError(f"{name} must be an integer in 1..2**53-1")
    return value


def _check_hash(value: Any, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise EncodingError(f"{name} must be {HASH_SIZE} bytes")
    return value


def _check_version(tx: Any, kind: str) -> None:
    _require(isinstance(tx, dict), f"a {kind} transaction is a mapping")
    _require(type(tx.get("v")) is int and tx["v"] == FORMAT_VERSION, f"unsupported {kind} version {tx.get('v')!r}")


@dataclass(frozen=True)
class Listing:
    """A data set offered for sale, as read from a seller's ``edx.listing`` block."""

    listing_id: str  # hex of the listing block's hash
    seller: bytes
    sequence_number: int
    created: int  # block timestamp, ms
    descriptor: dict[str, Any]
    price: int
    cid: str
    commitment: bytes
    expires: int | None  # ms since the epoch; None = until withdrawn

    @property
    def block_hash(self) -> bytes:
        """The listing block's hash, which payments name."""
        return bytes.fromhex(self.listing_id)

    def is_expired(self, now_ms: int) -> bool:
        """True once the listing's expiry has passed."""
        return self.expires is not None and now_ms >= self.expires


def listing_transaction(
    descriptor: Mapping[str, object], price: int, cid: str, commitment_: bytes, expires: int | None
) -> dict[str, Any]:
    """The transaction of an ``edx.listing`` block (validated)."""
    tx = {
        "v": FORMAT_VERSION,
        "descriptor": validate_descriptor(descriptor),
        "price": price,
        "cid": cid,
        "commitment": commitment_,
        "expires": expires,
    }
    _validate_listing_tx(tx)
    return tx


def _validate_listing_tx(tx: Any) -> None:
    _check_version(tx, "listing")
    _require(set(tx) == {"v", "descriptor", "price", "cid", "commitment", "expires"}, "listing fields")
    validate_descriptor(tx["descriptor"])
    _check_amount(tx["price"], "price")
    _require(isinstance(tx["cid"], str) and 0 < len(tx["cid"]) <= MAX_CID and tx["cid"].isascii(), "bad cid")
    _check_hash(tx["commitment"], "commitment")
    # Bounded like a payment's deadline: 10**30 got past this check to fail the block's encoding,
    # after the ciphertext and its key were stored.
    _require(tx["expires"] is None or type(tx["expires"]) is int and 0 < tx["expires"] <= MAX_TIMESTAMP,
             "expires is epoch milliseconds in 1..2**63-1")


def parse_listing(block: Any) -> Listing:
    """Read a Listing from an ``edx.listing`` half-block; EncodingError if malformed."""
    _require(block.type == LISTING, f"not a listing block: {block.type}")
    tx = block.transaction
    _validate_listing_tx(tx)
    return Listing(
        listing_id=block.hash.hex(),
        seller=block.public_key,
        sequence_number=block.sequence_number,
        created=block.timestamp,
        descriptor=dict(tx["descriptor"]),
        price=tx["price"],
        cid=tx["cid"],
        commitment=tx["commitment"],
        expires=tx["expires"],
    )


def withdrawal_transaction(listing_hash: bytes) -> dict[str, Any]:
    """The transaction of an ``edx.withdrawal`` block: the seller takes a listing off sale."""
    return {"v": FORMAT_VERSION, "listing": _check_hash(listing_hash, "listing")}


def parse_withdrawal(block: Any) -> bytes:
    """The listing hash an ``edx.withdrawal`` block withdraws; EncodingError if malformed."""
    _require(block.type == WITHDRAWAL, f"not a withdrawal block: {block.type}")
    _check_version(block.transaction, "withdrawal")
    return _check_hash(block.transaction.get("listing"), "listing")


@dataclass(frozen=True)
class Payment:
    """The buyer's side of a trade, as read from an ``edx.payment`` proposal."""

    listing: bytes
    amount: int
    negotiation: str | None
    deadline: int | None = None  # epoch ms; after it the payer may release the reservation


def payment_transaction(
    listing_hash: bytes, amount: int, negotiation: str | None = None, *, deadline: int | None = None
) -> dict[str, Any]:
    """The transaction of the buyer's ``edx.payment`` proposal (``deadline`` in epoch ms, or none)."""
    tx: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "listing": _check_hash(listing_hash, "listing"),
        "amount": _check_amount(amount, "amount"),
        "negotiation": negotiation,
    }
    if deadline is not None:  # absent, not null: payments without one keep their old encoding
        tx["deadline"] = deadline
    parse_payment(tx)
    return tx


def parse_payment(tx: Any) -> Payment:
    """Check a payment transaction (proposal or agreement) and read it; EncodingError if malformed."""
    _check_version(tx, "payment")
    negotiation = tx.get("negotiation")
    _require(
        # UTF-8-encodable: buy(negotiation="\udcff") got past this to fail the block's CBOR encoding
        negotiation is None or isinstance(negotiation, str) and 0 < len(negotiation) <= MAX_NEGOTIATION_ID
        and is_utf8(negotiation),
        "bad negotiation id",
    )
    deadline = tx.get("deadline")
    _require(
        "deadline" not in tx or type(deadline) is int and 0 < deadline <= MAX_TIMESTAMP,
        "the deadline is epoch milliseconds",
    )
    return Payment(
        _check_hash(tx.get("listing"), "listing"), _check_amount(tx.get("amount"), "amount"), negotiation, deadline
    )


def release_transaction(proposal_hash: bytes) -> dict[str, Any]:
    """The transaction of an ``edx.release`` record: the payer takes back an unanswered payment."""
    return {"v": FORMAT_VERSION, "proposal": _check_hash(proposal_hash, "proposal")}


def parse_release(block: Any) -> bytes:
    """The hash of the payment proposal an ``edx.release`` block releases."""
    _require(block.type == RELEASE, f"not a release block: {block.type}")
    _check_version(block.transaction, "release")
    return _check_hash(block.transaction.get("proposal"), "proposal")


def complaint_transaction(
    listing_hash: bytes, agreement_hash: bytes, seller: bytes, reason: str, opening: bytes | None
) -> dict[str, Any]:
    """The transaction of an ``edx.complaint`` block the buyer records after a failed check."""
    _require(reason in COMPLAINT_REASONS, f"unknown complaint reason {reason!r}")
    _require(opening is None or isinstance(opening, bytes) and len(opening) <= 1024, "bad opening")
    return {
        "v": FORMAT_VERSION,
        "listing": _check_hash(listing_hash, "listing"),
        "agreement": _check_hash(agreement_hash, "agreement"),
        "seller": _check_hash(seller, "seller"),
        "reason": reason,
        "opening": opening,
    }


@dataclass(frozen=True)
class Share:
    """A data union's payout to one member, as read from an ``edx.share`` proposal or agreement."""

    terms: bytes  # sha256 of the union's signed terms
    sale: bytes  # the hash of the payment agreement whose revenue is split
    amount: int


def share_transaction(terms_hash: bytes, sale_hash: bytes, amount: int) -> dict[str, Any]:
    """The transaction of an ``edx.share`` proposal: the union's operator pays a member its share."""
    tx = {"v": FORMAT_VERSION, "terms": terms_hash, "sale": sale_hash, "amount": amount}
    parse_share(tx)
    return tx


def parse_share(tx: Any) -> Share:
    """Check a share transaction and read it; EncodingError if malformed."""
    _check_version(tx, "share")
    _require(set(tx) == {"v", "terms", "sale", "amount"}, "share fields")
    return Share(_check_hash(tx["terms"], "terms"), _check_hash(tx["sale"], "sale"), _check_amount(tx["amount"], "amount"))
