"""Secure aggregation by pairwise masking: the aggregator learns the sum of a round, nothing else.

Every pair of members in a round's roster agrees on a seed by X25519 (each member's
TrustChain Ed25519 key, converted to its Curve25519 twin as for sealed boxes), hashed with
the round id. The seed is expanded (ChaCha20, libsodium's deterministic random bytes) into
one 64-bit mask per value. The member that sorts first adds the pair's mask, the other
subtracts it, all modulo 2^64, so the masks cancel exactly in the sum of the whole roster
while each masked vector on its own is uniformly distributed (Bonawitz et al., 2017,
without the dropout recovery: a round needs every member of its roster, and a member who
leaves is simply not in the next roster).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import nacl.bindings
import nacl.signing
import numpy as np

from enerdatx.crypto import Identity, is_public_key
from enerdatx.errors import SecureAggregationError

__all__ = ["MODULUS_BITS", "MAX_VALUE", "Round", "MaskedContribution", "pairwise_seed", "expand_mask",
           "mask_values", "unmask_sum"]

MODULUS_BITS = 64
MAX_VALUE = 2**62  # any real sum of readings stays far below 2^64, so the total is exact
SEED_DOMAIN = b"enerdatx/secagg/v1\x00"
MAX_LENGTH = 10_000_000


@dataclass(frozen=True)
class Round:
    """One aggregation: its id, the members whose masks must cancel, and the vector length."""

    round_id: bytes  # 32 bytes
    roster: tuple[bytes, ...]  # members' public keys, sorted
    length: int

    def __post_init__(self) -> None:
        # A str id, str or short keys and a length of 1.5 or True made a round; None or "4" a TypeError.
        if not isinstance(self.round_id, bytes) or len(self.round_id) != 32:
            raise SecureAggregationError("a round id is 32 bytes")
        roster = self.roster
        if (not isinstance(roster, tuple) or not all(map(is_public_key, roster))
                or list(roster) != sorted(set(roster)) or len(roster) < 2):
            raise SecureAggregationError("a roster is a tuple of at least two distinct 32-byte public keys, sorted")
        if isinstance(self.length, bool) or not isinstance(self.length, int) or not 0 < self.length <= MAX_LENGTH:
            raise SecureAggregationError(f"a round's vector has 1..{MAX_LENGTH} values")


@dataclass(frozen=True)
class MaskedContribution:
    """What a member sends the aggregator: its values plus its masks, modulo 2^64."""

    round_id: bytes
    member: bytes
    masked: np.ndarray  # uint64


def pairwise_seed(identity: Identity, other: bytes, round_id: bytes) -> bytes:
    """The 32-byte seed ``identity`` and ``other`` share for one round (the same from both sides)."""
    try:
        their = nacl.signing.VerifyKey(other).to_curve25519_public_key().encode()
    except Exception as exc:  # pynacl raises several types for a point not on the curve
        raise SecureAggregationError(f"not a valid member key: {other.hex()[:16]}") from exc
    ours = identity.signing_key.to_curve25519_private_key().encode()
    shared = nacl.bindings.crypto_scalarmult(ours, their)
    pair = b"".join(sorted((identity.public_key, other)))
    return hashlib.blake2b(SEED_DOMAIN + round_id + pair + shared, digest_size=32).digest()


def expand_mask(seed: bytes, length: int) -> np.ndarray:
    """``length`` uniform 64-bit values from a seed (ChaCha20 keystream, little-endian)."""
    stream = nacl.bindings.randombytes_buf_deterministic(8 * length, seed)
    return np.frombuffer(stream, dtype="<u8").astype(np.uint64)


def mask_values(identity: Identity, round_: Round, values: np.ndarray) -> MaskedContribution:
    """Mask a member's non-negative integer values for ``round_``."""
    me = identity.public_key
    if me not in round_.roster:
        raise SecureAggregationError("this member is not in the round's roster")
    values = np.asarray(values)
    if values.shape != (round_.length,) or values.dtype.kind not in "iu":
        raise SecureAggregationError(f"a contribution is {round_.length} integers")
    if len(values) and (values.min() < 0 or values.max() >= MAX_VALUE):
        raise SecureAggregationError("contributed values are integers in 0..2^62")
    masked = values.astype(np.uint64)
    for other in round_.roster:
        if other == me:
            continue
        mask = expand_mask(pairwise_seed(identity, other, round_.round_id), round_.length)
        # uint64 arithmetic wraps around: exactly arithmetic modulo 2^64.
        masked = masked + mask if me < other else masked - mask
    return MaskedContribution(round_.round_id, me, masked)


def unmask_sum(round_: Round, contributions: Iterable[MaskedContribution]) -> np.ndarray:
    """The exact sum of the roster's values: every member exactly once, or SecureAggregationError."""
    by_member: dict[bytes, MaskedContribution] = {}
    for contribution in contributions:
        if contribution.round_id != round_.round_id:
            raise SecureAggregationError("a contribution of another round")
        if contribution.member not in round_.roster:
            raise SecureAggregationError(f"{contribution.member.hex()[:16]} is not in the roster")
        if contribution.member in by_member:
            raise SecureAggregationError(f"{contribution.member.hex()[:16]} contributed twice")
        if contribution.masked.shape != (round_.length,) or contribution.masked.dtype != np.uint64:
            raise SecureAggregationError("a contribution of the wrong length or type")
        by_member[contribution.member] = contribution
    missing = [m for m in round_.roster if m not in by_member]
    if missing:
        raise SecureAggregationError(f"{len(missing)} of {len(round_.roster)} members have not contributed: "
                                     "their masks do not cancel without them")
    total = np.zeros(round_.length, dtype=np.uint64)
    for contribution in by_member.values():
        total += contribution.masked
    if (total >= np.uint64(MAX_VALUE) * np.uint64(2)).any():
        raise SecureAggregationError("the sum overflowed: a contribution was not what its member masked")
    return total.astype(np.int64)
