"""Fuzz targets: every decoder that takes bytes from outside, and its invariants.

A target gets arbitrary bytes and must either refuse them with a typed
``enerdatx.errors.EnerDatXError`` or accept an object that round-trips; any other
exception is a crasher. Run them with ``python -m fuzz.run`` (atheris, coverage-guided) or
through the hypothesis tests in tests/fuzz/. The network messages of both communities are
fuzzed through their real handlers in fuzz/network.py.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from types import SimpleNamespace

from enerdatx.crypto import Identity, verify_signature
from enerdatx.errors import EnerDatXError
from enerdatx.ipfs import EmbeddedStore
from enerdatx.ipfs.blocks import cid_string, make_cid, verify_block
from enerdatx.ipfs.car import read_car
from enerdatx.ipfs.dagpb import decode_node, decode_unixfs, encode_node, encode_unixfs
from enerdatx.market.formats import (
    LISTING,
    WITHDRAWAL,
    listing_transaction,
    parse_listing,
    parse_payment,
    parse_withdrawal,
    payment_transaction,
    withdrawal_transaction,
)
from enerdatx.market.negotiation import REQUEST_CONTEXT, StandingRequest, decode_step, encode_step
from enerdatx.meter import read_csv, read_dsmr, read_oehu, validate_readings
from enerdatx.trustchain import BlockStore, FraudProof, HalfBlock, TrustChain
from enerdatx.trustchain.encoding import decode_transaction, encode_transaction

Target = Callable[[bytes], None]
TARGETS: dict[str, Target] = {}
_FUZZ_IDENTITY = Identity.from_seed(bytes(32))
# Bytes a target hands on to slow parsers (pandas, dsmr-parser): more adds time, not coverage.
MAX_TEXT_INPUT = 64 * 1024


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


# --- TrustChain --------------------------------------------------------------------------


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


# --- market formats ------------------------------------------------------------------------


@target("market_transaction")
@refuse_cleanly
def fuzz_market_transaction(data: bytes) -> None:
    """A listing, withdrawal or payment transaction the parsers accept is one the builders make."""
    tx = decode_transaction(data)
    block = SimpleNamespace(type=LISTING, transaction=tx, hash=bytes(32), public_key=bytes(32),
                            sequence_number=1, timestamp=0)
    for parse, rebuild in (
        (lambda: parse_listing(block), lambda x: listing_transaction(x.descriptor, x.price, x.cid,
                                                                     x.commitment, x.expires)),
        (lambda: parse_payment(tx), lambda x: {**payment_transaction(x.listing, x.amount, x.negotiation),
                                               **({"sealed_key": tx["sealed_key"]} if "sealed_key" in tx else {})}),
        (lambda: parse_withdrawal(SimpleNamespace(type=WITHDRAWAL, transaction=tx)),
         lambda x: withdrawal_transaction(x)),
    ):
        try:
            parsed = parse()
        except EnerDatXError:
            continue
        rebuilt = rebuild(parsed)
        # A parser may ignore fields it does not read (and read a missing negotiation as null),
        # but never accepts a value the builder refuses.
        assert all(tx.get(key) == value for key, value in rebuilt.items()), (tx, rebuilt)


@target("negotiation_step")
@refuse_cleanly
def fuzz_negotiation_step(data: bytes) -> None:
    """A decoded negotiation step re-encodes to the same bytes."""
    assert encode_step(decode_step(data)) == data


@target("standing_request")
@refuse_cleanly
def fuzz_standing_request(data: bytes) -> None:
    """A decoded standing request is signed by its buyer and re-encodes to the same bytes."""
    request = StandingRequest.decode(data)
    assert request.encode() == data
    assert verify_signature(request.buyer, REQUEST_CONTEXT + request.body(), request.signature)


# --- content addressing --------------------------------------------------------------------


@target("car")
@refuse_cleanly
def fuzz_car(data: bytes) -> None:
    """Every block a CAR reader yields hashes to its CID."""
    _roots, blocks = read_car(io.BytesIO(data))
    for cid, block in blocks:
        assert verify_block(cid, block)


@target("dagpb")
@refuse_cleanly
def fuzz_dagpb(data: bytes) -> None:
    """A decoded dag-pb node (and its UnixFS data) re-encodes to bytes that decode the same."""
    node = decode_node(data)
    assert decode_node(encode_node(node)) == node
    if node.data is not None:
        unixfs = decode_unixfs(node.data)
        assert decode_unixfs(encode_unixfs(unixfs)) == unixfs


_STORE_DIRECTORY = tempfile.TemporaryDirectory(prefix="enerdatx-fuzz-")


@target("unixfs_cat")
@refuse_cleanly
def fuzz_unixfs_cat(data: bytes) -> None:
    """A block stored under its own CID reads back as a file, or is refused as a bad file."""
    store = EmbeddedStore(_STORE_DIRECTORY.name)
    cid = make_cid("dag-pb", data, 0)
    store.blocks.put(cid, data)
    try:
        content = store.cat(cid_string(cid))
        assert isinstance(content, bytes)
    finally:
        store.blocks.delete(cid)


# --- meter readings ------------------------------------------------------------------------


@target("dsmr")
@refuse_cleanly
def fuzz_dsmr(data: bytes) -> None:
    """Telegrams give canonical readings (or skip bad telegrams), never an untyped error."""
    data = data[:MAX_TEXT_INPUT]
    validate_readings(read_dsmr(data, errors="skip"))
    validate_readings(read_dsmr(data))


@target("oehu")
@refuse_cleanly
def fuzz_oehu(data: bytes) -> None:
    """OEHU JSON gives canonical readings or a ReadingsFormatError."""
    validate_readings(read_oehu(data[:MAX_TEXT_INPUT]))


@target("readings_csv")
@refuse_cleanly
def fuzz_readings_csv(data: bytes) -> None:
    """An uploaded CSV (the REST API's POST /data/readings) gives canonical readings or a typed error."""
    validate_readings(read_csv(data[:MAX_TEXT_INPUT]))


# The network messages and REST bodies need a running peer; importing registers them.
from fuzz import network  # noqa: E402,F401


# --- Data unions and aggregate queries --------------------------------------------------


@target("union_terms")
@refuse_cleanly
def fuzz_union_terms(data: bytes) -> None:
    """Decoded union terms are signed by their operator and re-encode to the same bytes."""
    from enerdatx.union import UnionTerms

    terms = UnionTerms.decode(data)
    assert verify_signature(terms.operator, b"enerdatx:union-terms:v1\n" + terms.body(), terms.signature)
    assert UnionTerms.decode(terms.encode()) == terms


@target("aggregate_query")
@refuse_cleanly
def fuzz_aggregate_query(data: bytes) -> None:
    """A decoded query re-encodes to the same bytes."""
    from enerdatx.market.query import AggregateQuery

    assert AggregateQuery.decode(data).encode() == data
