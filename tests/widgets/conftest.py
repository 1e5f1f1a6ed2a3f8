"""Ledgers with fixed keys and a fixed clock, so that every block (and so every table) is reproducible."""

from __future__ import annotations

import itertools

import pytest

from enerdatx.crypto import Identity
from enerdatx.trustchain import GENESIS_HASH, NO_COUNTERPARTY, BlockStore, HalfBlock, TrustChain

PAY = "edx.test.pay"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def ledger(seed_byte: int) -> TrustChain:
    """A ledger whose identity and clock are fixed by ``seed_byte``."""
    ticks = itertools.count(START_MS, 1000)
    chain = TrustChain(Identity.from_seed(bytes([seed_byte]) * 32), BlockStore(fsync=False), clock=lambda: next(ticks))
    chain.register_policy(PAY, lambda ledger, proposal: None)
    return chain


def trade(proposer: TrustChain, signer: TrustChain, amount: int) -> tuple[HalfBlock, HalfBlock]:
    """A complete pair: proposed, countersigned, and the agreement delivered back."""
    proposal = proposer.propose(signer.public_key, PAY, {"amount": amount})
    agreement = signer.countersign(proposal)
    assert not proposer.receive(agreement).is_invalid
    return proposal, agreement


def fork_genesis(identity: Identity) -> tuple[HalfBlock, HalfBlock]:
    """Two validly signed records at sequence number 1 of the same chain: a fork."""
    return tuple(  # type: ignore[return-value]
        HalfBlock.create(
            identity,
            sequence_number=1,
            previous_hash=GENESIS_HASH,
            link_public_key=NO_COUNTERPARTY,
            link_sequence_number=0,
            block_type=PAY,
            transaction={"amount": amount},
            timestamp=START_MS,
        )
        for amount in (1, 2)
    )


@pytest.fixture
def peers() -> dict[str, TrustChain]:
    """alice, bob and carol; alice paid bob twice and bob paid carol once."""
    alice, bob, carol = ledger(1), ledger(2), ledger(3)
    trade(alice, bob, 5)
    trade(alice, bob, 7)
    trade(bob, carol, 3)
    return {"alice": alice, "bob": bob, "carol": carol}
