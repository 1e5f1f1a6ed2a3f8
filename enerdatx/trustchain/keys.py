"""One identity, two key formats: a peer's TrustChain (Ed25519) key and its IPv8 key.

A peer's IPv8 key is the curve25519 ("LibNaCL") key made from the same Ed25519 seed, so it
signs with the same key and the last 32 bytes of its IPv8 public key are its TrustChain
public key. docs/network.md shows the layout.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

import nacl.exceptions
import nacl.signing
from ipv8.keyvault.crypto import default_eccrypto

from enerdatx.errors import EncodingError

if TYPE_CHECKING:
    from ipv8.keyvault.keys import PrivateKey
    from ipv8.peer import Peer as IPv8Peer

    from enerdatx.crypto import Identity

__all__ = ["ipv8_private_key", "ipv8_public_key_bin", "trustchain_key"]

_PUBLIC_PREFIX = b"LibNaCLPK:"
_PRIVATE_PREFIX = b"LibNaCLSK:"
_KEYS_KEPT = 65_536

# The IPv8 public keys of the identities whose IPv8 key this process made (its own peers), so
# that sending to them converts no Ed25519 key (60-75 µs each): 10,000 light peers in one
# process converted each other's during a fraud proof's spread, 0.6 s of its 9 s of CPU.
_own_key_bins: dict[bytes, bytes] = {}
_own_key_bins_lock = threading.Lock()  # peers are made on a Lab's loop thread and the caller's alike


def ipv8_private_key(identity: Identity) -> PrivateKey:
    """The IPv8 curve25519 key of ``identity``: the same Ed25519 seed, so the same signatures."""
    curve = identity.signing_key.to_curve25519_private_key()
    key = default_eccrypto.key_from_private_bin(_PRIVATE_PREFIX + bytes(curve) + identity.seed)
    with _own_key_bins_lock:
        if len(_own_key_bins) >= _KEYS_KEPT:
            del _own_key_bins[next(iter(_own_key_bins))]
        _own_key_bins[identity.public_key] = key.pub().key_to_bin()
    return key


def ipv8_public_key_bin(public_key: bytes) -> bytes:
    """The IPv8 public-key bytes of the peer whose TrustChain (Ed25519) key is ``public_key``;
    EncodingError if it is no Ed25519 public key."""
    return _own_key_bins.get(public_key) or _converted_key_bin(public_key)


@functools.lru_cache(maxsize=_KEYS_KEPT)  # a pure function; every community of a process asks for the same keys
def _converted_key_bin(public_key: bytes) -> bytes:
    try:
        curve = nacl.signing.VerifyKey(public_key).to_curve25519_public_key()
    except (nacl.exceptions.CryptoError, ValueError, TypeError):  # 32 bytes that are no curve point, say
        # libsodium's own words were "RuntimeError: Unexpected library error".
        raise EncodingError(f"not an Ed25519 public key: {bytes(public_key).hex()[:16]}…") from None
    return _PUBLIC_PREFIX + bytes(curve) + public_key


def trustchain_key(peer: IPv8Peer) -> bytes | None:
    """The TrustChain public key of an IPv8 peer, or None for a key type we do not speak."""
    key_bin = peer.public_key.key_to_bin()
    if len(key_bin) != 74 or not key_bin.startswith(_PUBLIC_PREFIX):
        return None
    return key_bin[-32:]
