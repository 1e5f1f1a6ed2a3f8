"""One identity, two key formats: a peer's TrustChain (Ed25519) key and its IPv8 key.

A peer's IPv8 key is the curve25519 ("LibNaCL") key made from the same Ed25519 seed, so it
signs with the same key and the last 32 bytes of its IPv8 public key are its TrustChain
public key. docs/network.md shows the layout.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import nacl.signing
from ipv8.keyvault.crypto import default_eccrypto

if TYPE_CHECKING:
    from ipv8.keyvault.keys import PrivateKey
    from ipv8.peer import Peer as IPv8Peer

    from enerdatx.crypto import Identity

__all__ = ["ipv8_private_key", "ipv8_public_key_bin", "trustchain_key"]

_PUBLIC_PREFIX = b"LibNaCLPK:"
_PRIVATE_PREFIX = b"LibNaCLSK:"


def ipv8_private_key(identity: Identity) -> PrivateKey:
    """The IPv8 curve25519 key of ``identity``: the same Ed25519 seed, so the same signatures."""
    curve = identity.signing_key.to_curve25519_private_key()
    return default_eccrypto.key_from_private_bin(_PRIVATE_PREFIX + bytes(curve) + identity.seed)


@functools.lru_cache(maxsize=65_536)  # a pure function; every community of a process asks for the same keys
def ipv8_public_key_bin(public_key: bytes) -> bytes:
    """The IPv8 public-key bytes of the peer whose TrustChain (Ed25519) key is ``public_key``."""
    curve = nacl.signing.VerifyKey(public_key).to_curve25519_public_key()
    return _PUBLIC_PREFIX + bytes(curve) + public_key


def trustchain_key(peer: IPv8Peer) -> bytes | None:
    """The TrustChain public key of an IPv8 peer, or None for a key type we do not speak."""
    key_bin = peer.public_key.key_to_bin()
    if len(key_bin) != 74 or not key_bin.startswith(_PUBLIC_PREFIX):
        return None
    return key_bin[-32:]
