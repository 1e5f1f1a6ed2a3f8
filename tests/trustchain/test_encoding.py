import csv
import dataclasses
from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enerdatx.crypto import Identity
from enerdatx.errors import EncodingError
from enerdatx.trustchain import FraudProof, HalfBlock
from enerdatx.trustchain.encoding import (
    MAX_BLOCK_SIZE,
    MAX_TRANSACTION_SIZE,
    decode_transaction,
    encode_transaction,
)
from tests.support.blocks import sign

VECTORS = Path(__file__).parent.parent / "vectors"


def _rows(name):
    with open(VECTORS / name, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("row", _rows("trustchain_blocks.csv"), ids=lambda row: row["name"])
def test_block_vectors(row):
    identity = Identity.from_seed(bytes.fromhex(row["signer_seed"]))
    block = HalfBlock.create(
        identity,
        sequence_number=int(row["sequence_number"]),
        previous_hash=bytes.fromhex(row["previous_hash"]),
        link_public_key=bytes.fromhex(row["link_public_key"]),
        link_sequence_number=int(row["link_sequence_number"]),
        block_type=row["type"],
        transaction=cbor2.loads(bytes.fromhex(row["transaction_cbor"])),
        timestamp=int(row["timestamp"]),
    )
    assert block.encode().hex() == row["encoded"]
    assert block.hash.hex() == row["hash"]
    decoded = HalfBlock.decode(bytes.fromhex(row["encoded"]))
    assert decoded == block and decoded.verify_signature()
    assert decoded.public_key == identity.public_key


@pytest.mark.parametrize("row", _rows("fraud_proofs.csv"), ids=lambda row: row["name"])
def test_fraud_proof_vectors(row):
    proof = FraudProof.decode(bytes.fromhex(row["encoded"]))
    assert proof.verify()
    assert proof.public_key.hex() == row["public_key"]
    assert proof.sequence_number == int(row["sequence_number"])
    assert proof.encode().hex() == row["encoded"]


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
transactions = st.dictionaries(st.text(max_size=8), json_like, max_size=6)


@given(transactions)
@settings(max_examples=300, deadline=None)
def test_transactions_round_trip_canonically(transaction):
    data = encode_transaction(transaction)
    assert decode_transaction(data) == transaction
    assert encode_transaction(decode_transaction(data)) == data


@given(transactions, st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 1), st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=64))
@settings(max_examples=100, deadline=None)
def test_blocks_round_trip(transaction, sequence_number, link_sequence_number, block_type):
    identity = Identity.from_seed(bytes(32))
    block = sign(
        identity,
        transaction=transaction,
        sequence_number=sequence_number,
        link_public_key=bytes(range(32)),
        link_sequence_number=link_sequence_number,
        block_type=block_type,
    )
    decoded = HalfBlock.decode(block.encode())
    assert decoded == block
    assert decoded.transaction == transaction
    assert decoded.hash == block.hash and decoded.verify_signature()


@given(st.binary(max_size=600))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_decode_or_raise_encoding_error(data):
    try:
        block = HalfBlock.decode(data)
    except EncodingError:
        return
    assert block.encode() == data


def test_key_order_is_length_first_and_unique():
    assert encode_transaction({"b": 1, "aa": 2, "a": 3}) == bytes.fromhex("a3616103616201626161" "02")


@pytest.mark.parametrize(
    "transaction, message",
    [
        ({"amount": 1.5}, "floats"),
        ({1: "x"}, "keys are strings"),
        ({"x": 2**64}, "64 bits"),
        ({"x": {1, 2}}, "cannot be encoded"),
        ([1, 2], "a dict"),
        ({"x": "y" * MAX_TRANSACTION_SIZE}, "more than"),
        # Round 15: a lone surrogate raised cbor2's UnicodeEncodeError.
        ({"x": "\ud800"}, "UTF-8"),
        ({"\udcff": 1}, "UTF-8"),
        ({"x": ["ok", {"y": "a\ud83d"}]}, "UTF-8"),
    ],
)
def test_unencodable_transactions_are_refused(transaction, message):
    with pytest.raises(EncodingError, match=message):
        encode_transaction(transaction)


def test_deep_nesting_is_refused():
    value: dict = {}
    for _ in range(20):
        value = {"x": value}
    with pytest.raises(EncodingError, match="deeper"):
        encode_transaction(value)


def test_non_canonical_transaction_bytes_are_refused():
    unsorted = bytes.fromhex("a2 6161 01 6162 02".replace(" ", ""))  # {"a":1,"b":2} canonical
    assert decode_transaction(unsorted) == {"a": 1, "b": 2}
    reversed_keys = bytes.fromhex("a2 6162 02 6161 01".replace(" ", ""))
    with pytest.raises(EncodingError, match="canonical"):
        decode_transaction(reversed_keys)
    long_int = bytes.fromhex("a1 6161 1a00000001".replace(" ", ""))  # 1 in a 4-byte int
    with pytest.raises(EncodingError, match="canonical"):
        decode_transaction(long_int)


def test_tagged_values_are_refused():
    tagged = cbor2.dumps({"t": cbor2.CBORTag(1, 0)})  # a date
    with pytest.raises(EncodingError):
        decode_transaction(tagged)


@pytest.mark.parametrize("thing", [None, "a block", 10**7, 5])
def test_decoders_take_bytes_only(thing):
    # Round 15: TypeErrors from len() or bytes(None); decode_shared(10**9) would make a gigabyte of zeros
    # first, and FraudProof.decode("x...") complained of an "unknown fraud proof version x".
    name = type(thing).__name__
    for decode in (HalfBlock.decode, HalfBlock.decode_shared):
        with pytest.raises(EncodingError, match=f"a block is bytes, not {name}$"):
            decode(thing)
    with pytest.raises(EncodingError, match=f"a fraud proof is bytes, not {name}$"):
        FraudProof.decode(thing)
    with pytest.raises(EncodingError, match=f"a transaction is CBOR bytes, not {name}$"):
        decode_transaction(thing)


def test_truncated_extended_and_versioned_blocks_are_refused():
    block = sign(Identity.generate())
    data = block.encode()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(EncodingError):
            HalfBlock.decode(data[:cut])
    with pytest.raises(EncodingError):
        HalfBlock.decode(data + b"\x00")
    with pytest.raises(EncodingError, match="version"):
        HalfBlock.decode(b"\x02" + data[1:])
    with pytest.raises(EncodingError, match="longer than"):
        HalfBlock.decode(b"\x01" * (MAX_BLOCK_SIZE + 1))


@pytest.mark.parametrize("block_type", ["", "x" * 65, "naïve", "tab\there"])
def test_bad_block_types_are_refused(block_type):
    with pytest.raises(EncodingError, match="block type"):
        sign(Identity.generate(), block_type=block_type)


@pytest.mark.parametrize(
    "fields, message",
    [
        # Round 15: these raised struct.error or TypeError, naming no field.
        ({"sequence_number": 1.0}, "sequence_number is an integer, not float"),
        ({"sequence_number": "1"}, "sequence_number is an integer, not str"),
        ({"link_sequence_number": None}, "link_sequence_number is an integer, not NoneType"),
        ({"timestamp": 1.5}, "timestamp is an integer, not float"),
        ({"sequence_number": True}, "sequence_number is an integer, not bool"),
        ({"previous_hash": None}, "previous_hash is 32 bytes, not NoneType"),
        ({"previous_hash": "x" * 32}, "previous_hash is 32 bytes, not str"),
        ({"previous_hash": b"x"}, "previous_hash is 32 bytes, not 1 bytes"),
    ],
)
def test_header_fields_of_the_wrong_type_are_refused(fields, message):
    with pytest.raises(EncodingError, match=message):
        sign(Identity.generate(), **fields)


def test_changing_any_field_breaks_the_signature():
    block = sign(Identity.generate(), sequence_number=3, previous_hash=b"\x01" * 32)
    for change in (
        {"sequence_number": 4},
        {"link_sequence_number": 1},
        {"previous_hash": b"\x02" * 32},
        {"timestamp": block.timestamp + 1},
        {"type": "other"},
        {"transaction": {"amount": 2}},
        {"link_public_key": b"\x05" * 32},
    ):
        assert not dataclasses.replace(block, **change).verify_signature(), change
    assert block.verify_signature()


def test_a_stored_block_read_back_is_the_block_the_process_decoded_from_the_wire():
    block = sign(Identity.generate(), transaction={"n": 1})
    data = block.encode()
    shared = HalfBlock.decode_shared(data)
    assert HalfBlock.decode_trusted(bytes(data)) is shared
    unseen = sign(Identity.generate(), transaction={"n": 2}).encode()
    assert HalfBlock.decode_trusted(unseen) == HalfBlock.decode(unseen)


def test_a_trusted_decode_never_lets_non_canonical_bytes_into_the_shared_cache():
    block = sign(Identity.generate(), transaction={"a": 1, "b": 2})
    canonical = block.encode()
    # The same transaction with its keys out of canonical order (same length): decode refuses it.
    sloppy = canonical.replace(bytes.fromhex("a2616101616202"), bytes.fromhex("a2616202616101"))
    assert sloppy != canonical
    HalfBlock.decode_trusted(sloppy)  # a store's own bytes are not checked ...
    with pytest.raises(EncodingError):
        HalfBlock.decode_shared(sloppy)  # ... and that decode did not vouch for bytes from the wire
