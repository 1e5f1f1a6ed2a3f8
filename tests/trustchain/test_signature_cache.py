"""The shared cache of verified signatures never lets through a block a lone peer would refuse.

Every forged block of the invalid-block catalogue (the cases of test_validation.py and the
fork of tests/vectors/trustchain_blocks.csv) is validated by a peer with an empty cache and by
peers that share a cache warmed with the genuine blocks the forgeries were made from; the
results must be the same, rule for rule.
"""

from __future__ import annotations

import csv
import dataclasses
import pickle
from pathlib import Path

import pytest

from enerdatx.crypto import VERIFIED_SIGNATURES, Identity, SignatureCache
from enerdatx.trustchain import GENESIS_HASH, BlockStore, HalfBlock, Rule, TrustChain
from enerdatx.trustchain import block as block_module
from enerdatx.trustchain.block import now_ms
from enerdatx.trustchain.encoding import SIGNING_CONTEXT
from enerdatx.trustchain.validation import MAX_CLOCK_SKEW_MS, MIN_TIMESTAMP
from tests.support.blocks import PAY, sign

VECTORS = Path(__file__).parents[1] / "vectors" / "trustchain_blocks.csv"


def ledger() -> TrustChain:
    chain = TrustChain(Identity.generate(), BlockStore(fsync=False))
    chain.register_policy(PAY, lambda ledger, proposal: None)
    return chain


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def catalogue() -> list[tuple[str, list[HalfBlock], HalfBlock]]:
    """(name, genuine blocks the receiver holds first, forged block) for every forgery we know."""
    owner, other, counterparty = Identity.generate(), Identity.generate(), Identity.generate()
    genuine = sign(owner)
    second = sign(owner, sequence_number=2, previous_hash=genuine.hash)
    proposal = sign(owner, link_public_key=counterparty.public_key)
    agreement = sign(counterparty, link_public_key=owner.public_key, link_sequence_number=1)
    cases: list[tuple[str, list[HalfBlock], HalfBlock]] = [
        ("flipped_signature_byte", [], dataclasses.replace(genuine, signature=flip(genuine.signature, 0))),
        ("flipped_last_signature_byte", [], dataclasses.replace(genuine, signature=flip(genuine.signature, 63))),
        ("signature_replayed_under_another_key", [], dataclasses.replace(genuine, public_key=other.public_key)),
        ("other_transaction_same_signature", [], dataclasses.replace(genuine, transaction={"amount": 1_000_000})),
        ("other_timestamp_same_signature", [], dataclasses.replace(genuine, timestamp=genuine.timestamp + 1)),
        ("other_type_same_signature", [], dataclasses.replace(genuine, type="edx.other")),
        ("signature_of_another_block", [], dataclasses.replace(genuine, signature=second.signature)),
        ("short_signature", [], dataclasses.replace(genuine, signature=genuine.signature[:10])),
        ("short_previous_hash", [], dataclasses.replace(genuine, previous_hash=bytes(31))),
        ("oversized_transaction", [], dataclasses.replace(genuine, transaction={"x": "y" * 40_000})),
        ("sequence_number_zero", [], sign(owner, sequence_number=0)),
        ("genesis_with_previous_hash", [], sign(owner, previous_hash=b"\x07" * 32)),
        ("missing_previous_hash", [], sign(owner, sequence_number=2, previous_hash=GENESIS_HASH)),
        ("record_with_link_sequence", [], sign(owner, link_sequence_number=4)),
        ("timestamp_too_old", [], sign(owner, timestamp=MIN_TIMESTAMP - 1)),
        # A day ahead: the catalogue is built when the tests are collected, minutes before they run.
        ("timestamp_in_the_future", [], sign(owner, timestamp=now_ms() + MAX_CLOCK_SKEW_MS + 86_400_000)),
        ("self_link", [], sign(owner, link_public_key=owner.public_key)),
        ("wrong_previous_hash", [genuine], sign(owner, sequence_number=2, previous_hash=b"\x09" * 32)),
        ("next_does_not_point_back", [second], sign(owner, transaction={"amount": 99})),
        ("fork", [genuine], sign(owner, transaction={"amount": 2})),
        ("agreement_to_a_record", [genuine], sign(counterparty, link_public_key=owner.public_key,
                                                   link_sequence_number=1)),
        ("agreement_of_another_type", [proposal], sign(counterparty, link_public_key=owner.public_key,
                                                       link_sequence_number=1, block_type="edx.other")),
        ("double_countersign", [proposal, agreement], sign(counterparty, sequence_number=2,
                                                           previous_hash=agreement.hash,
                                                           link_public_key=owner.public_key,
                                                           link_sequence_number=1)),
    ]
    # The vectors' fork: a second listing at the same place in the same chain.
    rows = {row["name"]: row for row in csv.DictReader(VECTORS.open())}
    vectors = {name: HalfBlock.decode(bytes.fromhex(row["encoded"])) for name, row in rows.items()}
    cases.append(("vector_listing_fork", [vectors["listing_record"]], vectors["listing_fork"]))
    tampered = bytearray(bytes.fromhex(rows["payment_proposal"]["encoded"]))
    tampered[-1] ^= 0x80  # the last signature byte, on the wire
    cases.append(("vector_tampered_signature", [], HalfBlock.decode(bytes(tampered))))
    return cases


CASES = catalogue()


def outcome(chain: TrustChain, held: list[HalfBlock], forged: HalfBlock) -> tuple[str, tuple[str, ...]]:
    for block in held:
        assert not chain.receive(block).is_invalid
    result = chain.validate(forged)
    return result.level.value, result.reasons


def warm(blocks: list[HalfBlock]) -> None:
    # Copies: a block object that verified before answers from itself, not from the cache.
    for block in blocks:
        assert HalfBlock.decode(block.encode()).verify_signature()


@pytest.fixture
def shared_cache(monkeypatch):
    """A fresh process-wide cache for one test (so tests do not see each other's triples)."""
    cache = SignatureCache()
    monkeypatch.setattr(block_module, "VERIFIED_SIGNATURES", cache)
    return cache


@pytest.mark.parametrize("name, held, forged", CASES, ids=[case[0] for case in CASES])
def test_a_forged_block_is_refused_with_a_warm_shared_cache_as_without(name, held, forged, shared_cache):
    lone = outcome(ledger(), held, forged)
    assert lone[0] == "invalid", f"{name}: the catalogue holds only blocks a lone peer refuses"
    # Warm the shared cache with every genuine block of the catalogue, then let several peers
    # (each after the one before, so the forgery's own triple is looked up too) judge it.
    warm([block for _, blocks, _ in CASES for block in blocks])
    warm([sign(Identity.generate()) for _ in range(3)])
    for _ in range(3):
        assert outcome(ledger(), held, forged) == lone
    assert shared_cache.hits > 0  # the genuine blocks were answered from the cache


def test_a_genuine_block_verifies_once_per_process(shared_cache):
    block = sign(Identity.generate())
    peers = [ledger() for _ in range(5)]
    for peer in peers:
        assert not peer.receive(HalfBlock.decode(block.encode())).is_invalid
    assert (shared_cache.misses, shared_cache.hits) == (1, 4)


def test_only_successes_are_kept():
    cache = SignatureCache()
    identity = Identity.generate()
    message = b"message"
    signature = identity.sign(message)
    assert not cache.verify(identity.public_key, message, flip(signature, 5))
    assert not cache.verify(Identity.generate().public_key, message, signature)
    assert len(cache) == 0
    assert cache.verify(identity.public_key, message, signature)
    assert (identity.public_key, message, signature) in cache
    # The same message with a flipped signature byte, and the valid signature under another
    # key, are still refused once the genuine triple is cached.
    assert not cache.verify(identity.public_key, message, flip(signature, 5))
    assert not cache.verify(Identity.generate().public_key, message, signature)
    assert not cache.verify(identity.public_key, message + b"!", signature)
    assert len(cache) == 1


def test_a_full_cache_evicts_the_least_recently_used_and_stays_exact():
    cache = SignatureCache(max_entries=3)
    identity = Identity.generate()
    triples = [(identity.public_key, bytes([n]), identity.sign(bytes([n]))) for n in range(5)]
    for triple in triples[:3]:
        assert cache.verify(*triple)
    assert cache.verify(*triples[0])  # used again: now the most recent
    assert cache.verify(*triples[3])  # evicts triples[1]
    assert len(cache) == 3
    assert triples[1] not in cache and triples[0] in cache
    hits = cache.hits
    assert cache.verify(*triples[1])  # verified afresh, not answered from the cache
    assert cache.hits == hits
    forged = (identity.public_key, triples[1][1], flip(triples[1][2], 0))
    assert not cache.verify(*forged)


def test_the_byte_bound_holds():
    cache = SignatureCache(max_entries=100, max_bytes=3 * (32 + 64 + 100))
    identity = Identity.generate()
    for n in range(10):
        message = bytes([n]) * 100
        assert cache.verify(identity.public_key, message, identity.sign(message))
    assert len(cache) == 3


def test_forged_blocks_stay_refused_with_a_full_cache(monkeypatch):
    cache = SignatureCache(max_entries=2)
    monkeypatch.setattr(block_module, "VERIFIED_SIGNATURES", cache)
    for name, held, forged in CASES:
        warm([sign(Identity.generate()) for _ in range(4)])  # the cache is full and evicting
        lone_result = TrustChain(Identity.generate(), BlockStore(fsync=False))
        assert outcome(lone_result, held, forged)[0] == "invalid", name


def test_non_bytes_arguments_are_verified_without_caching():
    cache = SignatureCache()
    identity = Identity.generate()
    signature = identity.sign(b"m")
    assert cache.verify(identity.public_key, bytearray(b"m"), signature)
    assert len(cache) == 0
    assert not cache.verify("not a key", b"m", signature)  # type: ignore[arg-type]


def test_blocks_use_the_process_wide_cache():
    block = sign(Identity.generate())
    assert block.verify_signature()
    assert (block.public_key, SIGNING_CONTEXT + block.encode()[: -64], block.signature) in VERIFIED_SIGNATURES
    assert Rule.BAD_SIGNATURE.value in TrustChain(Identity.generate(), BlockStore(fsync=False)).validate(
        dataclasses.replace(block, signature=flip(block.signature, 1))
    ).reasons


def test_a_block_object_remembers_its_own_success_and_nothing_else(shared_cache):
    block = HalfBlock.decode(sign(Identity.generate()).encode())
    assert block.verify_signature() and block.verify_signature()
    assert (shared_cache.misses, shared_cache.hits) == (1, 0)  # the second answer was the block's own
    forged = dataclasses.replace(block, signature=flip(block.signature, 0))
    assert not forged.verify_signature() and not forged.verify_signature()
    assert shared_cache.misses == 3  # a refusal is never remembered
    # Another process (a Dask worker) does not take the sender's word for it.
    revived = pickle.loads(pickle.dumps(block))
    assert "_signature_verified" not in revived.__dict__
    assert revived.verify_signature()
    assert shared_cache.hits == 1
