"""In-process markets on real TrustChain ledgers, wired to each other without IPv8.

``Town`` hands blocks between ledgers as the network would (every stored block is
gossiped to everyone; a seller crawls the buyer's chain before countersigning) so the
market's rules are tested without a network. Network tests use the real Lab.
"""

from __future__ import annotations

import hashlib
import itertools

from enerdatx.crypto import Identity
from enerdatx.errors import BlockMissingError
from enerdatx.market import Market
from enerdatx.trustchain import BlockStore, TrustChain

__all__ = ["DESCRIPTOR", "DataSet", "DictContentStore", "Town", "readings_bytes"]

_counter = itertools.count()


def readings_bytes(seed: int = 0, rows: int = 96) -> bytes:
    """A small data set in the enerdatx-readings/1 format."""
    lines = ["# enerdatx-readings/1 kind=electricity resolution_seconds=900", "interval_start,import_wh,export_wh,"
             "import_t1_wh,import_t2_wh,export_t1_wh,export_t2_wh"]
    for i in range(rows):
        hour, quarter = divmod(i, 4)
        v = (seed * 7 + i * 13) % 97
        lines.append(f"2026-01-01T{hour:02d}:{quarter * 15:02d}:00Z,{v},{v // 3},{v},0,{v // 3},0")
    return ("\n".join(lines) + "\n").encode("ascii")


DESCRIPTOR = {
    "format": "enerdatx-readings/1",
    "kind": "electricity",
    "start": "2026-01-01T00:00:00Z",
    "end": "2026-01-02T00:00:00Z",
    "resolution_seconds": 900,
    "n_readings": 96,
    "location": "2628",
    "household_type": "family",
}


class DictContentStore:
    """A content store keyed by sha256 (test stand-in for the embedded IPFS store)."""

    def __init__(self) -> None:
        self.blocks: dict[str, bytes] = {}

    def add_bytes(self, data: bytes) -> str:
        cid = "sha256-" + hashlib.sha256(data).hexdigest()
        self.blocks[cid] = bytes(data)
        return cid

    def cat(self, cid: str) -> bytes:
        try:
            return self.blocks[cid]
        except KeyError:
            raise BlockMissingError(cid) from None

    def has(self, cid: str) -> bool:
        return cid in self.blocks


class Town:
    """Markets that reach each other through direct calls."""

    def __init__(self, grant: int = 1000) -> None:
        self.grant = grant
        self.markets: dict[bytes, Market] = {}
        self.clock_ms = 1_780_000_000_000

    def clock(self) -> int:
        return self.clock_ms

    def add(self) -> Market:
        identity = Identity.from_seed(hashlib.sha256(b"town%d" % next(_counter)).digest())
        ledger = TrustChain(identity, BlockStore(fsync=False), clock=self.clock)
        market = Market(ledger, DictContentStore(), grant=self.grant, clock=self.clock,
                        propose=self._proposer(ledger), fetch=self._fetch)
        for other in self.markets.values():  # a newcomer learns what is already listed
            for block in other.ledger.store.chain(other.public_key):
                ledger.receive(block)
        ledger.subscribe(lambda block, origin=ledger: self._gossip(origin, block))
        self.markets[ledger.public_key] = market
        return market

    def _gossip(self, origin: TrustChain, block) -> None:
        if block.public_key != origin.public_key:
            return  # only the owner spreads its blocks here
        for market in self.markets.values():
            if market.ledger is not origin and block.is_record:
                market.ledger.receive(block)

    def _proposer(self, ledger: TrustChain):
        async def propose(counterparty: bytes, block_type: str, transaction: dict):
            proposal = ledger.propose(counterparty, block_type, transaction)
            seller = self.markets[counterparty].ledger
            missing = seller.missing_before(proposal)
            if missing:  # the crawl the network does before countersigning
                seller.receive_many(ledger.store.chain(ledger.public_key, missing.start, missing.stop - 1))
            agreement = seller.countersign(proposal)
            ledger.receive(agreement)
            return proposal, agreement

        return propose

    async def _fetch(self, listing) -> bytes:
        return self.markets[listing.seller].content.cat(listing.cid)


class DataSet:
    """What ``MarketService.sell`` takes: plaintext bytes and their public descriptor."""

    def __init__(self, plaintext: bytes, descriptor: dict) -> None:
        self.plaintext, self.descriptor = plaintext, descriptor
