"""Whom gossip goes to (network-free): a block's witnesses, and how a fraud rumour spreads and stops."""

from __future__ import annotations

import hashlib

from enerdatx.crypto import Identity
from enerdatx.trustchain import FraudProof
from enerdatx.trustchain.gossip import FraudRumours, witnesses
from enerdatx.trustchain.settings import TrustChainSettings
from tests.support.blocks import sign


def test_witnesses_are_the_xor_closest_keys_and_never_the_owner():
    owner = bytes(32)
    keys = [hashlib.sha256(bytes([i])).digest() for i in range(20)]
    chosen = witnesses(owner, 7, [owner, *keys], 4)
    target = int.from_bytes(hashlib.sha256(owner + (7).to_bytes(8, "big")).digest(), "big")
    assert chosen == sorted(keys, key=lambda k: int.from_bytes(k, "big") ^ target)[:4]
    assert witnesses(owner, 7, reversed(keys), 4) == chosen  # the order of candidates does not matter
    assert witnesses(owner, 8, keys, 4) != chosen  # another place in the chain, other witnesses


def _proof() -> FraudProof:
    forker = Identity.generate()
    return FraudProof.of(sign(forker, transaction={"amount": 1}), sign(forker, transaction={"amount": 2}))


def test_a_rumour_is_pushed_once_to_the_fanout_then_in_rounds_until_they_run_out():
    settings = TrustChainSettings().update(fraud_fanout=8, fraud_rounds=2, fraud_round_fanout=3)
    pushes: list[tuple[bytes, frozenset[bytes], int]] = []
    rumours = FraudRumours(settings, lambda proof, holders, count: pushes.append((proof, frozenset(holders), count)))
    proof = _proof()

    assert rumours.start(proof) and not rumours.start(proof)  # news once
    assert proof.public_key in rumours and rumours.spreading
    rumours.heard_from(proof.public_key, b"h" * 32)
    for _ in range(4):
        rumours.round()

    assert [count for _, _, count in pushes] == [8, 3, 3]
    assert all(sent == proof.encode() for sent, _, _ in pushes)
    assert b"h" * 32 in pushes[-1][1] and proof.public_key in pushes[0][1]  # holders are left out
    assert not rumours.spreading
