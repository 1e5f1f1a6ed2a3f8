"""Seed inputs per fuzz target, made from the test vectors (valid inputs reach deep code)."""

from __future__ import annotations

import csv
from pathlib import Path

VECTORS = Path(__file__).parent.parent / "tests" / "vectors"


def seeds(name: str) -> list[bytes]:
    """Valid example inputs for a target."""
    if name == "halfblock":
        return [bytes.fromhex(row["encoded"]) for row in _rows("trustchain_blocks.csv")]
    if name == "transaction":
        return [bytes.fromhex(row["transaction_cbor"]) for row in _rows("trustchain_blocks.csv")]
    if name == "fraud_proof":
        return [bytes.fromhex(row["encoded"]) for row in _rows("fraud_proofs.csv")]
    return []


def write_seeds(name: str, corpus: Path) -> None:
    """Put the seeds into a corpus directory (idempotent)."""
    for index, data in enumerate(seeds(name)):
        path = corpus / f"seed-{index}"
        if not path.exists():
            path.write_bytes(data)


def _rows(file_name: str) -> list[dict[str, str]]:
    with open(VECTORS / file_name, newline="") as handle:
        return list(csv.DictReader(handle))
