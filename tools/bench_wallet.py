"""CPU per `Wallet.balance` call as a chain grows (docs/performance.md, round 4).

Usage: python tools/bench_wallet.py [BLOCKS]

A buyer signs BLOCKS payment proposals (the buyer's chain in `bench market` grows to ~120
at 2,000 trades among 100 peers). Two patterns, as in a market run:

- ``own``: after each new block, the holder asks the balance again (a buyer's own balance
  before each purchase): one wallet, BLOCKS calls;
- ``first``: a fresh wallet (a seller meeting this buyer for the first time) asks the
  balance below the newest block: one call each, for chains of 1..BLOCKS blocks.

Prints microseconds of CPU per call for each. Run it against two copies of the package
(PYTHONPATH=copy python tools/bench_wallet.py) to compare them.
"""

from __future__ import annotations

import sys
import time

from enerdatx.crypto import Identity
from enerdatx.market.formats import PAYMENT, payment_transaction
from enerdatx.market.wallet import Wallet
from enerdatx.trustchain import GENESIS_HASH, HalfBlock
from enerdatx.trustchain.store import BlockStore

LISTING = bytes(32)


def chain(blocks: int) -> list[HalfBlock]:
    """``blocks`` payment proposals of one buyer to one seller, linked by hash."""
    buyer, seller = Identity.generate(), Identity.generate()
    made: list[HalfBlock] = []
    for n in range(1, blocks + 1):
        made.append(HalfBlock.create(
            buyer, sequence_number=n, previous_hash=made[-1].hash if made else GENESIS_HASH,
            link_public_key=seller.public_key, link_sequence_number=0, block_type=PAYMENT,
            transaction=payment_transaction(LISTING, 1, deadline=2_000_000_000_000), timestamp=1_700_000_000_000 + n,
        ))
    return made


def main() -> None:
    """Print CPU µs per balance call for the two patterns."""
    blocks = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    made = chain(blocks)
    key = made[0].public_key
    store = BlockStore()
    own = Wallet(store)
    spent = 0.0
    for block in made:
        store.insert_validated([block])
        start = time.process_time()
        own.balance(key)
        spent += time.process_time() - start
    print(f"own:   {1e6 * spent / blocks:8.1f} µs per call (chain of 1..{blocks} blocks)")
    spent = 0.0
    for n in range(1, blocks + 1):
        start = time.process_time()
        Wallet(store).balance(key, before=n + 1)
        spent += time.process_time() - start
    print(f"first: {1e6 * spent / blocks:8.1f} µs per call (chain of 1..{blocks} blocks)")


if __name__ == "__main__":
    main()
