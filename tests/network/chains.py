"""Helpers for network tests: checking chains across peers, trading, awaiting fraud proofs."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from enerdatx.peer import Peer
from enerdatx.trustchain import GENESIS_HASH, HalfBlock

PING = "test.ping"


def assert_own_chain_valid(peer: Peer) -> list[HalfBlock]:
    """The peer's own chain is 1..n, signed, and hash-linked."""
    chain = peer.store.chain(peer.public_key)
    assert [b.sequence_number for b in chain] == list(range(1, len(chain) + 1))
    previous = GENESIS_HASH
    for block in chain:
        assert block.verify_signature()
        assert block.previous_hash == previous
        previous = block.hash
    return chain


def assert_consistent(peers: Sequence[Peer]) -> int:
    """Every honest peer's chain is valid, every proposal's agreement is held by both parties,
    and any block two peers both hold is the same block. Returns the number of agreements."""
    by_key = {peer.public_key: peer for peer in peers}
    agreements = 0
    for peer in peers:
        for block in assert_own_chain_valid(peer):
            if block.is_proposal and block.link_public_key in by_key:
                other = by_key[block.link_public_key]
                mine, theirs = peer.store.linked(block), other.store.linked(block)
                assert mine == theirs, "the two parties disagree on an agreement"
                agreements += mine is not None
        for other in peers:
            for block in other.store.chain(peer.public_key):
                assert peer.store.get(peer.public_key, block.sequence_number) == block
    return agreements


async def fraud_everywhere(honest: Sequence[Peer], forker: Peer, timeout: float) -> None:
    """Wait until every honest peer holds a fraud proof against ``forker``."""
    loop = asyncio.get_running_loop()
    pending = {peer.public_key for peer in honest if not peer.store.is_fraudulent(forker.public_key)}
    done = loop.create_future()
    for peer in honest:

        def found(proof, key=peer.public_key) -> None:
            pending.discard(key)
            if not pending and not done.done():
                done.set_result(None)

        peer.ledger.on_fraud(found)
    if pending:
        await asyncio.wait_for(done, timeout)


async def trade(peers: Sequence[Peer], rounds: int, rng: random.Random, timeout: float = 10.0) -> list:
    """Each round, every peer proposes to a random other peer, all at once."""
    outcomes = []
    for _ in range(rounds):
        jobs = []
        for peer in peers:
            other = rng.choice([p for p in peers if p is not peer])
            jobs.append(peer.community.propose(other.public_key, PING, {"amount": rng.randrange(100)}, timeout))
        outcomes += await asyncio.gather(*jobs, return_exceptions=True)
    return outcomes
