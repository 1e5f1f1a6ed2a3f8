"""TrustChain: pairwise half-blocks, their encoding and validation, fraud proofs, the store.

Each peer keeps its own chain; a transaction is a proposal on one chain and an agreement
on the other, each signed by its owner. Forks are not prevented but proven (FraudProof).
The wire format is specified in docs/trustchain.md. The IPv8 community that carries
blocks between peers lives in :mod:`enerdatx.trustchain.community`.
"""

from enerdatx.trustchain.block import GENESIS_HASH, NO_COUNTERPARTY, HalfBlock, now_ms
from enerdatx.trustchain.encoding import decode_transaction, encode_transaction
from enerdatx.trustchain.fraud import FraudProof
from enerdatx.trustchain.ledger import Policy, TrustChain
from enerdatx.trustchain.store import BlockStore
from enerdatx.trustchain.validation import Rule, ValidationLevel, ValidationResult

__all__ = [
    "GENESIS_HASH",
    "NO_COUNTERPARTY",
    "BlockStore",
    "FraudProof",
    "HalfBlock",
    "Policy",
    "Rule",
    "TrustChain",
    "ValidationLevel",
    "ValidationResult",
    "decode_transaction",
    "encode_transaction",
    "now_ms",
]
