"""Blocks signed with any fields a test needs, and complete transactions between two ledgers."""

from __future__ import annotations

from enerdatx.crypto import Identity
from enerdatx.trustchain import GENESIS_HASH, NO_COUNTERPARTY, HalfBlock, TrustChain
from enerdatx.trustchain.block import now_ms

__all__ = ["PAY", "sign", "transact"]

PAY = "edx.test.pay"


def sign(identity: Identity, **fields) -> HalfBlock:
    """A validly signed block with the given fields (defaults: a genesis record)."""
    defaults = dict(
        sequence_number=1,
        previous_hash=GENESIS_HASH,
        link_public_key=NO_COUNTERPARTY,
        link_sequence_number=0,
        block_type=PAY,
        transaction={"amount": 1},
        timestamp=now_ms(),
    )
    defaults.update(fields)
    return HalfBlock.create(identity, **defaults)


def transact(proposer: TrustChain, signer: TrustChain, amount: int = 1) -> tuple[HalfBlock, HalfBlock]:
    """One complete transaction, each block crossing a simulated wire."""
    proposal = proposer.propose(signer.public_key, PAY, {"amount": amount})
    agreement = signer.countersign(HalfBlock.decode(proposal.encode()))
    result = proposer.receive(HalfBlock.decode(agreement.encode()))
    assert not result.is_invalid, result
    return proposal, agreement
