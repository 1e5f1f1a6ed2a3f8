"""Shared builders: identities, ledgers, and blocks signed with any fields a test needs."""

from __future__ import annotations

import pytest

from enerdatx.crypto import Identity
from enerdatx.trustchain import GENESIS_HASH, NO_COUNTERPARTY, BlockStore, HalfBlock, TrustChain
from enerdatx.trustchain.block import now_ms

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


@pytest.fixture
def alice() -> TrustChain:
    ledger = TrustChain(Identity.generate(), BlockStore(fsync=False))
    ledger.register_policy(PAY, lambda ledger, proposal: None)
    return ledger


@pytest.fixture
def bob() -> TrustChain:
    ledger = TrustChain(Identity.generate(), BlockStore(fsync=False))
    ledger.register_policy(PAY, lambda ledger, proposal: None)
    return ledger


@pytest.fixture
def carol() -> TrustChain:
    ledger = TrustChain(Identity.generate(), BlockStore(fsync=False))
    ledger.register_policy(PAY, lambda ledger, proposal: None)
    return ledger


def transact(proposer: TrustChain, signer: TrustChain, amount: int = 1) -> tuple[HalfBlock, HalfBlock]:
    """One complete transaction, each block crossing a simulated wire."""
    proposal = proposer.propose(signer.public_key, PAY, {"amount": amount})
    agreement = signer.countersign(HalfBlock.decode(proposal.encode()))
    result = proposer.receive(HalfBlock.decode(agreement.encode()))
    assert not result.is_invalid, result
    return proposal, agreement
