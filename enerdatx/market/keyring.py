"""The secrets a market peer keeps off-chain: data keys of its listings and of what it bought.

One small SQLite database (WAL). A seller stores a listing's key before it signs the
listing, indexed by the commitment (known before the block exists), so a crash never
leaves a listing on the chain whose key is lost.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

from enerdatx.files import closed_database

__all__ = ["Keyring", "Purchase"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS listing_secret (
    commitment BLOB PRIMARY KEY,
    opening    BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS purchase (
    listing_id     TEXT PRIMARY KEY,
    agreement_hash BLOB NOT NULL,
    seller         BLOB NOT NULL,
    cid            TEXT NOT NULL,
    amount         INTEGER NOT NULL,
    opening        BLOB NOT NULL,
    bought_at      INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Purchase:
    """A data set this peer bought and verified: enough to decrypt it again at any time."""

    listing_id: str
    agreement_hash: bytes
    seller: bytes
    cid: str
    amount: int
    opening: bytes
    bought_at: int


class Keyring:
    """Listing secrets and purchases of one peer, in SQLite (``":memory:"`` for tests)."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, fsync: bool = True) -> None:
        self.path = os.fspath(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            # A listing's key must be on disk before the listing is signed; tests may skip the wait.
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.executescript(_SCHEMA)

    def put_listing_secret(self, commitment: bytes, opening: bytes) -> None:
        """Keep the opening (key + salt) of a listing about to be signed."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO listing_secret VALUES (?, ?)", (commitment, opening))

    def listing_secret(self, commitment: bytes) -> bytes | None:
        """The opening of our listing with that commitment, or None."""
        row = self._db.execute("SELECT opening FROM listing_secret WHERE commitment = ?", (commitment,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_purchase(self, purchase: Purchase) -> None:
        """Record a verified purchase (its opening lets us decrypt the data again)."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO purchase VALUES (?, ?, ?, ?, ?, ?, ?)",
                (purchase.listing_id, purchase.agreement_hash, purchase.seller, purchase.cid,
                 purchase.amount, purchase.opening, purchase.bought_at),
            )

    def purchase(self, listing_id: str) -> Purchase | None:
        """Our purchase of that listing, or None."""
        row = self._db.execute("SELECT * FROM purchase WHERE listing_id = ?", (listing_id,)).fetchone()
        return None if row is None else _purchase(row)

    def purchases(self) -> list[Purchase]:
        """Every purchase, oldest first."""
        rows = self._db.execute("SELECT * FROM purchase ORDER BY bought_at, listing_id").fetchall()
        return [_purchase(row) for row in rows]

    def close(self) -> None:
        """Close the database."""
        self._db.close()
        self._db = closed_database("key ring", self.path)


def _purchase(row: tuple[str, bytes, bytes, str, int, bytes, int]) -> Purchase:
    listing_id, agreement_hash, seller, cid, amount, opening, bought_at = row
    return Purchase(listing_id, bytes(agreement_hash), bytes(seller), cid, amount, bytes(opening), bought_at)
