"""Builders: ledgers that trade with each other, and blocks signed at chosen times."""

from __future__ import annotations

import itertools

import networkx as nx

from enerdatx.crypto import Identity
from enerdatx.trustchain import GENESIS_HASH, BlockStore, HalfBlock, TrustChain

PAY = "edx.test.pay"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000


class Clock:
    """A shared clock that tests move by hand."""

    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def ledger(clock: Clock | None = None) -> TrustChain:
    """A peer's ledger in memory that countersigns every PAY proposal."""
    chain = TrustChain(Identity.generate(), BlockStore(fsync=False), clock=clock)
    chain.register_policy(PAY, lambda ledger, proposal: None)
    return chain


def trade(
    buyer: TrustChain, seller: TrustChain, amount: int, *witnesses: TrustChain, agreement_first: bool = False
) -> tuple[HalfBlock, HalfBlock]:
    """The buyer pays with a proposal, the seller countersigns; both halves reach the buyer and every
    witness (the agreement first, if asked: gossip does not keep order)."""
    proposal = buyer.propose(seller.public_key, PAY, {"amount": amount})
    agreement = seller.countersign(HalfBlock.decode(proposal.encode()))
    assert not buyer.receive(HalfBlock.decode(agreement.encode())).is_invalid
    for witness in witnesses:
        for block in (agreement, proposal) if agreement_first else (proposal, agreement):
            assert not witness.receive(HalfBlock.decode(block.encode())).is_invalid
    return proposal, agreement


_seeds = itertools.count(1)


def signed_pair(
    proposer: Identity,
    signer: Identity,
    transaction: dict,
    *,
    timestamp: int = START_MS,
    block_type: str = PAY,
    sequence_number: int = 1,
) -> tuple[HalfBlock, HalfBlock]:
    """A proposal and its agreement at ``sequence_number`` of each chain, signed at ``timestamp``.

    Beyond the genesis, previous_hash is made up: the graph never validates chains.
    """
    previous_hash = GENESIS_HASH if sequence_number == 1 else bytes([1]) * 32
    proposal = HalfBlock.create(
        proposer,
        sequence_number=sequence_number,
        previous_hash=previous_hash,
        link_public_key=signer.public_key,
        link_sequence_number=0,
        block_type=block_type,
        transaction=transaction,
        timestamp=timestamp,
    )
    agreement = HalfBlock.create(
        signer,
        sequence_number=sequence_number,
        previous_hash=previous_hash,
        link_public_key=proposer.public_key,
        link_sequence_number=sequence_number,
        block_type=block_type,
        transaction=transaction,
        timestamp=timestamp,
    )
    return proposal, agreement


def identity() -> Identity:
    """A fresh deterministic identity."""
    return Identity.from_seed(next(_seeds).to_bytes(32, "big"))


def contribution_graph(edges: list[tuple[str, str, int]]) -> nx.DiGraph:
    """A contribution graph from (contributor, beneficiary, amount) triples; repeated edges add up."""
    graph = nx.DiGraph()
    for u, v, amount in edges:
        if graph.has_edge(u, v):
            graph[u][v]["amount"] += amount
        else:
            graph.add_edge(u, v, amount=amount)
    return graph


def fork_of(owner: TrustChain, block: HalfBlock) -> HalfBlock:
    """Another block of ``owner``'s at the same place as ``block``: proof that ``owner`` forked."""
    return HalfBlock.create(
        owner.identity,
        sequence_number=block.sequence_number,
        previous_hash=block.previous_hash,
        link_public_key=block.link_public_key,
        link_sequence_number=block.link_sequence_number,
        block_type=block.type,
        transaction={**block.transaction, "forked": True},
        timestamp=block.timestamp,
    )
