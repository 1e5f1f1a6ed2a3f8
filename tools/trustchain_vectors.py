"""Regenerate tests/vectors/trustchain_blocks.csv and fraud_proofs.csv (docs/trustchain.md).

The vectors are fixed once written: a change to them is a change of the wire format and
needs a new FORMAT_VERSION. Run: python tools/trustchain_vectors.py tests/vectors
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cbor2

from enerdatx.crypto import Identity
from enerdatx.trustchain import GENESIS_HASH, NO_COUNTERPARTY, FraudProof, HalfBlock

ALICE = Identity.from_seed(bytes([1]) * 32)
BOB = Identity.from_seed(bytes([2]) * 32)
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

FIELDS = [
    "name", "signer_seed", "sequence_number", "link_public_key", "link_sequence_number",
    "previous_hash", "timestamp", "type", "transaction_cbor", "encoded", "hash",
]  # fmt: skip


def blocks() -> list[tuple[str, Identity, HalfBlock]]:
    """The vector blocks: a payment proposal, its agreement, a record, and a fork of the record."""
    proposal = HalfBlock.create(
        ALICE, sequence_number=1, previous_hash=GENESIS_HASH, link_public_key=BOB.public_key,
        link_sequence_number=0, block_type="edx.payment",
        transaction={"amount": 20, "listing": bytes(range(32))}, timestamp=T0,
    )  # fmt: skip
    agreement = HalfBlock.create(
        BOB, sequence_number=1, previous_hash=GENESIS_HASH, link_public_key=ALICE.public_key,
        link_sequence_number=1, block_type="edx.payment",
        transaction={"amount": 20, "listing": bytes(range(32)), "sealed_key": b"\xaa" * 80},
        timestamp=T0 + 5,
    )  # fmt: skip
    record = HalfBlock.create(
        ALICE, sequence_number=2, previous_hash=proposal.hash, link_public_key=NO_COUNTERPARTY,
        link_sequence_number=0, block_type="edx.listing",
        transaction={"price": 20, "cid": "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
                     "tags": ["electricity", "15min"], "expires": None, "public": True},
        timestamp=T0 + 60_000,
    )  # fmt: skip
    fork = HalfBlock.create(
        ALICE, sequence_number=2, previous_hash=proposal.hash, link_public_key=NO_COUNTERPARTY,
        link_sequence_number=0, block_type="edx.listing",
        transaction={"price": 1, "cid": "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"},
        timestamp=T0 + 60_000,
    )  # fmt: skip
    return [("payment_proposal", ALICE, proposal), ("payment_agreement", BOB, agreement),
            ("listing_record", ALICE, record), ("listing_fork", ALICE, fork)]  # fmt: skip


def main(out: Path) -> None:
    """Write both CSV files into ``out``."""
    rows = blocks()
    with open(out / "trustchain_blocks.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for name, identity, block in rows:
            writer.writerow([
                name, identity.seed.hex(), block.sequence_number, block.link_public_key.hex(),
                block.link_sequence_number, block.previous_hash.hex(), block.timestamp, block.type,
                cbor2.dumps(block.transaction, canonical=True).hex(), block.encode().hex(), block.hash.hex(),
            ])  # fmt: skip
    proof = FraudProof.of(rows[2][2], rows[3][2])
    with open(out / "fraud_proofs.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "public_key", "sequence_number", "encoded"])
        writer.writerow(["listing_fork", proof.public_key.hex(), proof.sequence_number, proof.encode().hex()])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/vectors"))
