"""Proofs of fraud: two validly signed half-blocks at the same place in one chain."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from enerdatx.errors import EncodingError
from enerdatx.trustchain.block import HalfBlock
from enerdatx.trustchain.encoding import MAX_BLOCK_SIZE

__all__ = ["FraudProof"]

PROOF_VERSION = 1
_LENGTH = struct.Struct(">I")
MAX_PROOF_SIZE = 1 + 2 * (_LENGTH.size + MAX_BLOCK_SIZE)


@dataclass(frozen=True)
class FraudProof:
    """A fork: anyone can check it alone, with no other block and no trust in who sent it."""

    block_a: HalfBlock
    block_b: HalfBlock

    @classmethod
    def of(cls, first: HalfBlock, second: HalfBlock) -> FraudProof:
        """The proof for two conflicting blocks, in canonical order (lower hash first)."""
        a, b = sorted((first, second), key=lambda block: block.hash)
        return cls(a, b)

    @property
    def public_key(self) -> bytes:
        """The forker's public key."""
        return self.block_a.public_key

    @property
    def sequence_number(self) -> int:
        """Where the chain forked."""
        return self.block_a.sequence_number

    def verify(self) -> bool:
        """True when both blocks are signed by one key at one sequence number and differ."""
        a, b = self.block_a, self.block_b
        return (
            a.public_key == b.public_key
            and a.sequence_number == b.sequence_number
            and a.hash < b.hash
            and a.verify_signature()
            and b.verify_signature()
        )

    def encode(self) -> bytes:
        """Version byte, then each block prefixed by its 4-byte big-endian length."""
        a, b = self.block_a.encode(), self.block_b.encode()
        return b"".join((bytes((PROOF_VERSION,)), _LENGTH.pack(len(a)), a, _LENGTH.pack(len(b)), b))

    @classmethod
    def decode(cls, data: bytes) -> FraudProof:
        """Parse proof bytes (EncodingError if malformed); call :meth:`verify` before trusting it."""
        if not isinstance(data, (bytes, bytearray, memoryview)):  # None failed on len(); a str read as bytes
            raise EncodingError(f"a fraud proof is bytes, not {type(data).__name__}")
        data = bytes(data)
        if not 1 + 2 * _LENGTH.size <= len(data) <= MAX_PROOF_SIZE:
            raise EncodingError(f"a fraud proof is not {len(data)} bytes long")
        if data[0] != PROOF_VERSION:
            raise EncodingError(f"unknown fraud proof version {data[0]}")
        blocks = []
        offset = 1
        for _ in range(2):
            if len(data) < offset + _LENGTH.size:
                raise EncodingError("fraud proof is truncated")
            (size,) = _LENGTH.unpack_from(data, offset)
            offset += _LENGTH.size
            if size > MAX_BLOCK_SIZE or len(data) < offset + size:
                raise EncodingError("fraud proof is truncated or holds an oversized block")
            blocks.append(HalfBlock.decode(data[offset : offset + size]))
            offset += size
        if offset != len(data):
            raise EncodingError("fraud proof has trailing bytes")
        return cls(blocks[0], blocks[1])
