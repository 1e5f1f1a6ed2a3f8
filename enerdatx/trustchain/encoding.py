"""The canonical, versioned, size-bounded binary encoding of half-blocks (docs/trustchain.md).

Transactions are deterministic CBOR (RFC 8949 core deterministic encoding, length-first
key order as cbor2's ``canonical=True`` writes it) restricted to JSON-like values plus
byte strings; floats are refused because amounts are integers. A decoder accepts only the
canonical bytes, so one transaction has exactly one encoding and one hash.
"""

from __future__ import annotations

import struct
from typing import Any, cast

import cbor2

from enerdatx.errors import EncodingError

FORMAT_VERSION = 1
SIGNING_CONTEXT = b"enerdatx:halfblock:v1\n"

KEY_SIZE = 32
HASH_SIZE = 32
SIGNATURE_SIZE = 64
MAX_TYPE_SIZE = 64
# Small enough that a fraud proof (two blocks) fits one UDP datagram with IPv8's headers.
MAX_TRANSACTION_SIZE = 32_000
MAX_NESTING = 16
MAX_SEQUENCE_NUMBER = 2**32 - 1
MAX_TIMESTAMP = 2**63 - 1
MIN_INT, MAX_INT = -(2**63), 2**64 - 1

# version, public_key, sequence_number, link_public_key, link_sequence_number, previous_hash, timestamp
_HEADER = struct.Struct(">B32sI32sI32sQ")
Header = tuple[bytes, int, bytes, int, bytes, int]
"""public_key, sequence_number, link_public_key, link_sequence_number, previous_hash, timestamp."""
HEADER_SIZE = _HEADER.size  # 113
MIN_BLOCK_SIZE = HEADER_SIZE + 1 + 1 + 4 + 1 + SIGNATURE_SIZE
MAX_BLOCK_SIZE = HEADER_SIZE + 1 + MAX_TYPE_SIZE + 4 + MAX_TRANSACTION_SIZE + SIGNATURE_SIZE


def encode_transaction(transaction: Any) -> bytes:
    """Encode a transaction (a dict with str keys) canonically; refuse what cannot be signed."""
    if not isinstance(transaction, dict):
        raise EncodingError(f"a transaction is a dict, not {type(transaction).__name__}")
    _check_value(transaction, 0)
    try:
        data = cbor2.dumps(transaction, canonical=True)
    except UnicodeEncodeError as exc:  # a lone surrogate: CBOR text is UTF-8
        raise EncodingError(
            f"transaction strings are UTF-8 text, not {exc.object[exc.start : exc.end]!r} (a lone surrogate)"
        ) from None
    if len(data) > MAX_TRANSACTION_SIZE:
        raise EncodingError(f"transaction is {len(data)} bytes, more than {MAX_TRANSACTION_SIZE}")
    return data


def decode_transaction(data: bytes) -> dict[str, Any]:
    """Decode canonical transaction bytes; anything else raises EncodingError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):  # None failed on len()
        raise EncodingError(f"a transaction is CBOR bytes, not {type(data).__name__}")
    if len(data) > MAX_TRANSACTION_SIZE:
        raise EncodingError(f"transaction is {len(data)} bytes, more than {MAX_TRANSACTION_SIZE}")
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several unrelated types on bad input
        raise EncodingError(f"transaction is not valid CBOR: {exc}") from exc
    if not isinstance(value, dict):
        raise EncodingError("transaction is not a CBOR map")
    _check_value(value, 0)
    if cbor2.dumps(value, canonical=True) != data:
        raise EncodingError("transaction is not canonically encoded")
    return value


def _check_value(value: Any, depth: int) -> None:
    if depth > MAX_NESTING:
        raise EncodingError(f"transaction nests deeper than {MAX_NESTING} levels")
    if value is None or isinstance(value, (bool, str, bytes)):
        return
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise EncodingError(f"integer {value} does not fit 64 bits")
        return
    if isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"transaction keys are strings, not {type(key).__name__}")
            _check_value(item, depth + 1)
        return
    if isinstance(value, float):
        raise EncodingError("floats are not allowed in transactions (amounts are integers)")
    raise EncodingError(f"{type(value).__name__} values cannot be encoded in a transaction")


def encode_unsigned(
    public_key: bytes,
    sequence_number: int,
    link_public_key: bytes,
    link_sequence_number: int,
    previous_hash: bytes,
    timestamp: int,
    block_type: str,
    transaction_bytes: bytes,
) -> bytes:
    """Encode every field but the signature: the bytes the signature covers, after the context."""
    for key in (public_key, link_public_key):
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:  # None failed on len(); a str of 32 in struct
            shown = f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__
            raise EncodingError(f"public keys are {KEY_SIZE} bytes, not {shown}")
    if not isinstance(previous_hash, bytes) or len(previous_hash) != HASH_SIZE:  # None failed on len()
        shown = f"{len(previous_hash)} bytes" if isinstance(previous_hash, bytes) else type(previous_hash).__name__
        raise EncodingError(f"previous_hash is {HASH_SIZE} bytes, not {shown}")
    for name, number in (
        ("sequence_number", sequence_number),
        ("link_sequence_number", link_sequence_number),
        ("timestamp", timestamp),
    ):
        # A float or a str failed inside struct.pack or a comparison, naming no field.
        if not isinstance(number, int) or isinstance(number, bool):
            raise EncodingError(f"{name} is an integer, not {type(number).__name__} {number!r}")
    if not 0 <= sequence_number <= MAX_SEQUENCE_NUMBER or not 0 <= link_sequence_number <= MAX_SEQUENCE_NUMBER:
        raise EncodingError("sequence numbers are unsigned 32-bit integers")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise EncodingError("timestamp is out of range")
    type_bytes = encode_type(block_type)
    return b"".join(
        (
            _HEADER.pack(
                FORMAT_VERSION,
                public_key,
                sequence_number,
                link_public_key,
                link_sequence_number,
                previous_hash,
                timestamp,
            ),
            bytes((len(type_bytes),)),
            type_bytes,
            len(transaction_bytes).to_bytes(4, "big"),
            transaction_bytes,
        )
    )


def encode_type(block_type: str) -> bytes:
    """A block type: 1 to 64 printable ASCII characters."""
    if not isinstance(block_type, str):
        raise EncodingError("a block type is a string")
    data = block_type.encode("ascii", errors="replace")
    if not 1 <= len(data) <= MAX_TYPE_SIZE or not block_type.isascii() or not block_type.isprintable():
        raise EncodingError(f"a block type is 1 to {MAX_TYPE_SIZE} printable ASCII characters: {block_type!r}")
    return data


def split_block(data: bytes) -> tuple[Header, str, bytes, bytes, bytes]:
    """Parse block bytes into (header fields, type, transaction bytes, unsigned bytes, signature)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError(f"a block is bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) < MIN_BLOCK_SIZE:
        raise EncodingError(f"block is {len(data)} bytes, shorter than the minimum {MIN_BLOCK_SIZE}")
    if len(data) > MAX_BLOCK_SIZE:
        raise EncodingError(f"block is {len(data)} bytes, longer than the maximum {MAX_BLOCK_SIZE}")
    header = _HEADER.unpack_from(data)
    if header[0] != FORMAT_VERSION:
        raise EncodingError(f"unknown block format version {header[0]}")
    type_size = data[HEADER_SIZE]
    offset = HEADER_SIZE + 1
    if not 1 <= type_size <= MAX_TYPE_SIZE:
        raise EncodingError(f"block type length {type_size} is out of range")
    type_bytes = data[offset : offset + type_size]
    offset += type_size
    try:
        block_type = type_bytes.decode("ascii")
    except UnicodeDecodeError as exc:
        raise EncodingError("block type is not ASCII") from exc
    encode_type(block_type)
    if len(data) < offset + 4:
        raise EncodingError("block is truncated inside the transaction length")
    tx_size = int.from_bytes(data[offset : offset + 4], "big")
    offset += 4
    if tx_size > MAX_TRANSACTION_SIZE:
        raise EncodingError(f"transaction length {tx_size} is more than {MAX_TRANSACTION_SIZE}")
    if len(data) != offset + tx_size + SIGNATURE_SIZE:
        raise EncodingError(
            f"block is {len(data)} bytes but its fields need {offset + tx_size + SIGNATURE_SIZE}"
        )
    transaction_bytes = data[offset : offset + tx_size]
    unsigned = data[: offset + tx_size]
    signature = data[offset + tx_size :]
    return cast(Header, header[1:]), block_type, transaction_bytes, unsigned, signature
