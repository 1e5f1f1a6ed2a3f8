"""Fuzz targets: every decoder that takes bytes from outside, and its invariants.

A target gets arbitrary bytes and must either refuse them with a typed
``enerdatx.errors.EnerDatXError`` or accept an object that round-trips; any other
exception is a crasher. Run them with ``python -m fuzz.run`` (atheris, coverage-guided) or
through the hypothesis tests in tests/fuzz/.
"""

from __future__ import annotations

from collections.abc import Callable

from enerdatx.crypto import Identity
from enerdatx.errors import EnerDatXError
from enerdatx.trustchain import BlockStore, FraudProof, HalfBlock, TrustChain
from enerdatx.trustchain.encoding import decode_transaction, encode_transaction

Target = Callable[[bytes], None]
TARGETS: dict[str, Target] = {}
_FUZZ_IDENTITY = Identity.from_seed(bytes(32))


def target(name: str) -> Callable[[Target], Target]:
    """Register a fuzz target under ``name``."""

    def register(function: Target) -> Target:
        TARGETS[name] = function
        return function

    return register


def refuse_cleanly(function: Target) -> Target:
    """Treat EnerDatX's typed errors as a clean refusal of the input."""

    def wrapped(data: bytes) -> None:
        try:
            function(data)
        except EnerDatXError:
            pass

    wrapped.__name__ = function.__name__
    wrapped.__doc__ = function.__doc__
    return wrapped


@target("halfblock")
@refuse_cleanly
def fuzz_halfblock(data: bytes) -> None:
    """A decoded block re-encodes to the same bytes; validation never raises."""
    block = HalfBlock.decode(data)
    assert block.encode() == data
    ledger = TrustChain(_FUZZ_IDENTITY, BlockStore(":memory:", fsync=False))
    result = ledger.receive(block)
    assert result.is_invalid or ledger.store.count() == 1


@target("transaction")
@refuse_cleanly
def fuzz_transaction(data: bytes) -> None:
    """A decoded transaction re-encodes to the same bytes."""
    assert encode_transaction(decode_transaction(data)) == data


@target("fraud_proof")
@refuse_cleanly
def fuzz_fraud_proof(data: bytes) -> None:
    """A decoded proof re-encodes to the same bytes; verify() only answers."""
    proof = FraudProof.decode(data)
    assert proof.encode() == data
    assert proof.verify() in (True, False)
