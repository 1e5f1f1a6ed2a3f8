"""Subscription block formats: test vectors (tests/vectors/subscription_blocks.csv) and bad input.

Regenerate the vectors after a deliberate format change with
``python -m tests.market.test_subscription_formats`` (and bump the format version).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from enerdatx.crypto import Identity
from enerdatx.errors import EncodingError
from enerdatx.market.formats import LISTING, commitment, listing_transaction, parse_listing
from enerdatx.market.subscription import verify_missed_period
from enerdatx.market.subscription_formats import (
    MISSED_PERIOD,
    OFFER,
    REVOCATION,
    SUBSCRIPTION,
    Terms,
    missed_period_transaction,
    offer_transaction,
    parse_missed_period,
    parse_offer,
    parse_revocation,
    parse_subscription,
    parse_terms,
    period_of,
    revocation_transaction,
    subscription_transaction,
    terms_dict,
)
from enerdatx.trustchain import GENESIS_HASH, NO_COUNTERPARTY, BlockStore, HalfBlock
from enerdatx.trustchain.encoding import encode_transaction

VECTORS = Path(__file__).parent.parent / "vectors" / "subscription_blocks.csv"
FIELDS = ("name", "signer_seed", "sequence_number", "link_public_key", "link_sequence_number", "previous_hash",
          "timestamp", "type", "transaction_cbor", "encoded", "hash")
T0 = 1772323200000  # 2026-03-01T00:00:00Z
TERMS = Terms("grid-research", 30, False)
DESCRIPTOR = {"kind": "electricity", "resolution_seconds": 900, "location": "2628", "household_type": "family"}


def build_vectors() -> list[tuple[str, HalfBlock]]:
    """The documented example: an offer, an agreement, a period listing, a missed period, a revocation."""
    seller, buyer = Identity.from_seed(bytes([1]) * 32), Identity.from_seed(bytes([2]) * 32)
    offer = HalfBlock.create(seller, sequence_number=1, previous_hash=GENESIS_HASH, link_public_key=NO_COUNTERPARTY,
                             link_sequence_number=0, block_type=OFFER, timestamp=T0,
                             transaction=offer_transaction(DESCRIPTOR, 7, 3_600_000, T0, 24, TERMS))
    agreement_tx = subscription_transaction(offer.hash, TERMS, 0)
    proposal = HalfBlock.create(buyer, sequence_number=1, previous_hash=GENESIS_HASH,
                                link_public_key=seller.public_key, link_sequence_number=0,
                                block_type=SUBSCRIPTION, transaction=agreement_tx, timestamp=T0 + 1000)
    agreement = HalfBlock.create(seller, sequence_number=2, previous_hash=offer.hash,
                                 link_public_key=buyer.public_key, link_sequence_number=1,
                                 block_type=SUBSCRIPTION, transaction=agreement_tx, timestamp=T0 + 1005)
    period_descriptor = {"format": "enerdatx-readings/1", "kind": "electricity", "start": "2026-03-01T00:00:00Z",
                         "end": "2026-03-01T01:00:00Z", "resolution_seconds": 900, "n_readings": 4,
                         "location": "2628", "household_type": "family", "subscription": offer.hash.hex(),
                         "period": 0}
    period = HalfBlock.create(seller, sequence_number=3, previous_hash=agreement.hash,
                              link_public_key=NO_COUNTERPARTY, link_sequence_number=0, block_type=LISTING,
                              timestamp=T0 + 3_600_000,
                              transaction=listing_transaction(period_descriptor, 7, "sha256-example",
                                                              commitment(bytes(32), b"period 0"), None))
    missed = HalfBlock.create(buyer, sequence_number=2, previous_hash=proposal.hash, link_public_key=NO_COUNTERPARTY,
                              link_sequence_number=0, block_type=MISSED_PERIOD, timestamp=T0 + 3 * 3_600_000,
                              transaction=missed_period_transaction(agreement.encode(), 1))
    revocation = HalfBlock.create(buyer, sequence_number=3, previous_hash=missed.hash,
                                  link_public_key=NO_COUNTERPARTY, link_sequence_number=0, block_type=REVOCATION,
                                  timestamp=T0 + 3 * 3_600_000 + 1,
                                  transaction=revocation_transaction(proposal.hash, "consent_withdrawn"))
    return [("offer", offer), ("agreement_proposal", proposal), ("agreement", agreement),
            ("period_listing", period), ("missed_period", missed), ("revocation", revocation)]


def _row(name: str, block: HalfBlock, seed: int) -> dict[str, str]:
    return {"name": name, "signer_seed": (bytes([seed]) * 32).hex(), "sequence_number": str(block.sequence_number),
            "link_public_key": block.link_public_key.hex(), "link_sequence_number": str(block.link_sequence_number),
            "previous_hash": block.previous_hash.hex(), "timestamp": str(block.timestamp), "type": block.type,
            "transaction_cbor": encode_transaction(block.transaction).hex(), "encoded": block.encode().hex(),
            "hash": block.hash.hex()}


def _signer_seed(block: HalfBlock) -> int:
    return 1 if block.public_key == Identity.from_seed(bytes([1]) * 32).public_key else 2


def _rows() -> list[dict[str, str]]:
    with open(VECTORS, newline="", encoding="ascii") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("row", _rows(), ids=lambda row: row["name"])
def test_vectors(row) -> None:
    built = dict(build_vectors())[row["name"]]
    assert _row(row["name"], built, _signer_seed(built)) == row  # the builders give the documented bytes
    block = HalfBlock.decode(bytes.fromhex(row["encoded"]))
    assert block.verify_signature()
    assert block.hash.hex() == row["hash"]
    assert block.public_key == Identity.from_seed(bytes.fromhex(row["signer_seed"])).public_key
    parse = {OFFER: parse_offer, REVOCATION: parse_revocation, MISSED_PERIOD: parse_missed_period,
             SUBSCRIPTION: lambda b: parse_subscription(b.transaction), LISTING: parse_listing}[block.type]
    parse(block)


def test_the_vectors_tell_the_story() -> None:
    blocks = dict(build_vectors())
    offer = parse_offer(blocks["offer"])
    assert offer.period_bounds(23) == (T0 + 23 * 3_600_000, T0 + 24 * 3_600_000)
    assert parse_subscription(blocks["agreement"].transaction) == (blocks["offer"].hash, TERMS, 0)
    assert period_of(parse_listing(blocks["period_listing"]).descriptor) == (offer.offer_id, 0)
    assert parse_revocation(blocks["revocation"]).target == blocks["agreement_proposal"].hash
    store = BlockStore(":memory:")
    store.insert_validated([blocks[name] for name in ("offer", "agreement", "period_listing")])
    assert verify_missed_period(store, blocks["missed_period"])  # period 1 was never listed
    late = {**blocks["missed_period"].transaction, "period": 0}  # period 0 was listed before the complaint
    unfounded = HalfBlock.create(Identity.from_seed(bytes([2]) * 32), sequence_number=2,
                                 previous_hash=blocks["agreement_proposal"].hash, link_public_key=NO_COUNTERPARTY,
                                 link_sequence_number=0, block_type=MISSED_PERIOD, timestamp=T0 + 3 * 3_600_000,
                                 transaction=late)
    assert not verify_missed_period(store, unfounded)


@pytest.mark.parametrize("change", [
    {"price": 0}, {"price": "7"}, {"period_ms": 10}, {"periods": 0}, {"start": -1},
    {"terms": {"purpose": "", "retention_days": 30, "resale": False}},
    # Before: accepted, and signed (a purpose of spaces; terms that look like the offer's but are not).
    {"terms": {"purpose": "   ", "retention_days": 30, "resale": False}},
    {"terms": {"purpose": "\u00a0\u3000", "retention_days": 30, "resale": False}},
    {"terms": {"purpose": " grid-research", "retention_days": 30, "resale": False}},
    {"terms": {"purpose": "grid-research\n", "retention_days": 30, "resale": False}},
    {"terms": {"purpose": "x", "retention_days": 0, "resale": False}},
    {"terms": {"purpose": "x", "retention_days": 30, "resale": 1}},
    {"terms": {"purpose": "x", "retention_days": 30}},
    {"extra": 1}, {"v": 2},
])
def test_bad_offers_are_refused(change) -> None:
    block = dict(build_vectors())["offer"]
    tx = {**block.transaction, **change}
    forged = HalfBlock.create(Identity.from_seed(bytes([1]) * 32), sequence_number=1, previous_hash=GENESIS_HASH,
                              link_public_key=NO_COUNTERPARTY, link_sequence_number=0, block_type=OFFER,
                              transaction=tx, timestamp=T0)
    with pytest.raises(EncodingError):
        parse_offer(forged)


def test_a_missed_period_needs_the_sellers_signature() -> None:
    blocks = dict(build_vectors())
    tampered = bytearray(blocks["agreement"].encode())
    tampered[-1] ^= 1
    buyer = Identity.from_seed(bytes([2]) * 32)
    forged = HalfBlock.create(buyer, sequence_number=2, previous_hash=blocks["agreement_proposal"].hash,
                              link_public_key=NO_COUNTERPARTY, link_sequence_number=0, block_type=MISSED_PERIOD,
                              timestamp=T0, transaction=missed_period_transaction(bytes(tampered), 1))
    assert not verify_missed_period(BlockStore(":memory:"), forged)
    with pytest.raises(EncodingError):
        missed_period_transaction(b"", 1)


def test_period_of_ignores_ordinary_descriptors() -> None:
    assert period_of(DESCRIPTOR) is None
    assert period_of({"subscription": "ab", "period": 1}) is None
    assert period_of({"subscription": "ab" * 32, "period": -1}) is None
    assert period_of({"subscription": "ab" * 32, "period": True}) is None


if __name__ == "__main__":
    with open(VECTORS, "w", newline="", encoding="ascii") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        for name, block in build_vectors():
            writer.writerow(_row(name, block, _signer_seed(block)))
    print(f"wrote {VECTORS}")


@pytest.mark.parametrize(("purpose", "message"), [
    ("   ", "purpose must say what the data is for, not be white space only: '   '"),
    ("\t\n", "purpose must say what the data is for, not be white space only: '\\t\\n'"),
    (" grid-research", "purpose must not begin or end with white space: ' grid-research'"),
    ("grid-research\u00a0", "purpose must not begin or end with white space: 'grid-research\\xa0'"),
])
def test_a_blank_purpose_or_one_padded_with_white_space_is_refused(purpose: str, message: str) -> None:
    with pytest.raises(EncodingError, match=f"^{re.escape(message)}$"):
        terms_dict(Terms(purpose, 30, False))
    with pytest.raises(EncodingError, match=f"^{re.escape(message)}$"):
        parse_terms({"purpose": purpose, "retention_days": 30, "resale": False})
    assert terms_dict(Terms("grid research, 15-minute data", 30, False))["purpose"] == "grid research, 15-minute data"
