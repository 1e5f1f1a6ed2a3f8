"""TrustChain half-blocks: one party's signed half of a pairwise transaction."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar, overload

import cbor2

from enerdatx.crypto import VERIFIED_SIGNATURES, Identity
from enerdatx.errors import EncodingError
from enerdatx.trustchain.encoding import (
    HASH_SIZE,
    KEY_SIZE,
    SIGNING_CONTEXT,
    decode_transaction,
    encode_transaction,
    encode_unsigned,
    split_block,
)

__all__ = ["HalfBlock", "GENESIS_HASH", "NO_COUNTERPARTY", "now_ms"]

GENESIS_HASH = bytes(HASH_SIZE)
"""The previous_hash of every chain's first block (sequence number 1)."""

NO_COUNTERPARTY = bytes(KEY_SIZE)
"""The link_public_key of a unilateral record (a listing, a complaint) that nobody countersigns."""


def now_ms() -> int:
    """The current time in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


# Blocks decoded from the wire, by their bytes, shared by the peers of a process (see decode_shared).
SHARED_DECODED_BLOCKS = 4096
_decoded: OrderedDict[bytes, HalfBlock] = OrderedDict()
_decoded_lock = threading.Lock()

# The key in a block's __dict__ that says its signature verified (see HalfBlock.verify_signature).
_VERIFIED = "_signature_verified"


class _BlockHash:
    """``HalfBlock.hash``: computed on first use and kept in the block's ``__dict__``.

    What ``functools.cached_property`` does, without the lock that Python 3.11's takes on
    every first use (a block's hash is a pure function of its bytes: two threads computing
    it at once get the same value).
    """

    @overload
    def __get__(self, block: None, owner: type | None = None) -> _BlockHash: ...
    @overload
    def __get__(self, block: HalfBlock, owner: type | None = None) -> bytes: ...
    def __get__(self, block: HalfBlock | None, owner: type | None = None) -> bytes | _BlockHash:
        if block is None:
            return self
        value = hashlib.sha256(block.encode()).digest()
        block.__dict__["hash"] = value  # an instance attribute now: later reads skip this method
        return value


@dataclass(frozen=True, eq=False)
class HalfBlock:
    """One signed half-block; treat ``transaction`` as read-only (the signature covers it).

    A decoded block may be shared by every peer of the process (:meth:`decode_shared`): its
    fields are frozen, ``hash`` is a function of them, and nothing may change ``transaction``.
    """

    public_key: bytes
    sequence_number: int
    link_public_key: bytes
    link_sequence_number: int
    previous_hash: bytes
    timestamp: int
    type: str
    transaction: dict[str, Any]
    signature: bytes
    # The canonical bytes, kept from decoding or signing; not an init field, so that
    # dataclasses.replace() makes a block that is encoded afresh from its fields.
    _encoded: bytes = field(init=False, repr=False, compare=False, default=b"")

    @classmethod
    def create(
        cls,
        identity: Identity,
        *,
        sequence_number: int,
        previous_hash: bytes,
        link_public_key: bytes,
        link_sequence_number: int,
        block_type: str,
        transaction: dict[str, Any],
        timestamp: int | None = None,
    ) -> HalfBlock:
        """Encode and sign a new half-block with ``identity``."""
        transaction_bytes = encode_transaction(transaction)
        timestamp = now_ms() if timestamp is None else timestamp
        header = (identity.public_key, sequence_number, link_public_key, link_sequence_number, previous_hash, timestamp)
        unsigned = encode_unsigned(*header, block_type, transaction_bytes)
        signature = identity.sign(SIGNING_CONTEXT + unsigned)
        # Decode our own canonical bytes so the block holds its own copy of the transaction.
        block = cls(*header, block_type, cbor2.loads(transaction_bytes), signature)
        object.__setattr__(block, "_encoded", unsigned + signature)
        return block

    @classmethod
    def decode(cls, data: bytes) -> HalfBlock:
        """Parse block bytes; malformed, oversized or non-canonical bytes raise EncodingError."""
        header, block_type, transaction_bytes, _unsigned, signature = split_block(data)
        block = cls(*header, block_type, decode_transaction(transaction_bytes), signature)
        object.__setattr__(block, "_encoded", bytes(data))
        return block

    @classmethod
    def decode_shared(cls, data: bytes) -> HalfBlock:
        """As :meth:`decode`, but the same bytes give the same (immutable) block process-wide.

        The peers of one process that receive one gossiped block decode it once between them.
        Only successful decodes are kept, so bad bytes raise EncodingError every time.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):  # bytes(10**9) made a gigabyte of zeros
            raise EncodingError(f"a block is bytes, not {type(data).__name__}")
        key = bytes(data)
        with _decoded_lock:
            block = _decoded.get(key)
            if block is not None:
                _decoded.move_to_end(key)
                return block
        block = cls.decode(key)
        with _decoded_lock:
            _decoded[key] = block
            if len(_decoded) > SHARED_DECODED_BLOCKS:
                _decoded.popitem(last=False)
        return block

    @classmethod
    def decode_trusted(cls, data: bytes) -> HalfBlock:
        """Parse bytes that this program encoded itself (the store), skipping canonical checks.

        Bytes a peer of this process has decoded from the wire lately give the same shared
        block (:meth:`decode_shared`): equal bytes decode to equal blocks. A trusted decode
        is not added to that cache, which only ever holds fully checked decodes.
        """
        shared = _decoded.get(data)  # one atomic dict read: no lock needed
        if shared is not None:
            return shared
        header, block_type, transaction_bytes, _unsigned, signature = split_block(data)
        block = cls(*header, block_type, cbor2.loads(transaction_bytes), signature)
        object.__setattr__(block, "_encoded", bytes(data))
        return block

    def encode(self) -> bytes:
        """The canonical bytes of this block, signature included."""
        if not self._encoded:
            object.__setattr__(self, "_encoded", self._unsigned_bytes() + self.signature)
        return self._encoded

    def _unsigned_bytes(self) -> bytes:
        if self._encoded:
            return self._encoded[: len(self._encoded) - len(self.signature)]
        return encode_unsigned(
            self.public_key,
            self.sequence_number,
            self.link_public_key,
            self.link_sequence_number,
            self.previous_hash,
            self.timestamp,
            self.type,
            encode_transaction(self.transaction),
        )

    hash: ClassVar[_BlockHash] = _BlockHash()
    """sha256 of the signed encoding: the block's identity in every link."""

    @property
    def is_proposal(self) -> bool:
        """True for a proposal (and a unilateral record): it links to no sequence number."""
        return self.link_sequence_number == 0

    @property
    def is_record(self) -> bool:
        """True for a unilateral record that nobody countersigns."""
        return self.link_public_key == NO_COUNTERPARTY

    def verify_signature(self) -> bool:
        """True when the signature is the owner's over this block's fields.

        Checked through the process-wide :data:`~enerdatx.crypto.VERIFIED_SIGNATURES`: the peers
        of one process that receive the same block verify its signature once between them.
        A block that verified remembers it: the check is over its canonical bytes, which are
        fixed once encoded, so the answer cannot change. A shared block (:meth:`decode_shared`)
        is checked that way by the crawl that fetched it and by every peer that stores it.
        """
        if self.__dict__.get(_VERIFIED):
            return True
        encoded = self.encode()  # fixes the bytes that the answer is about
        verified = VERIFIED_SIGNATURES.verify(
            self.public_key, SIGNING_CONTEXT + encoded[: len(encoded) - len(self.signature)], self.signature
        )
        if verified:
            self.__dict__[_VERIFIED] = True
        return verified

    def __getstate__(self) -> dict[str, Any]:
        # A block sent to another process (a Dask worker) is verified there afresh.
        state = dict(self.__dict__)
        state.pop(_VERIFIED, None)
        return state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HalfBlock) and self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        kind = "record" if self.is_record else "proposal" if self.is_proposal else "agreement"
        return (
            f"HalfBlock({kind} {self.type!r} {self.public_key.hex()[:8]}#{self.sequence_number}"
            f" -> {self.link_public_key.hex()[:8]}#{self.link_sequence_number}, hash={self.hash.hex()[:8]})"
        )
