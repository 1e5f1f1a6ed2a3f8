"""Fixtures of the ledger tests: three ledgers that accept test payments (builders: tests/support/blocks.py)."""

from __future__ import annotations

import pytest

from enerdatx.crypto import Identity
from enerdatx.trustchain import BlockStore, TrustChain
from tests.support.blocks import PAY


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
