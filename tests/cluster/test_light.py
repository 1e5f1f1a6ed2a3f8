"""Light peers: the same validation as full peers, one address book per process, uniform gossip targets."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
import tempfile

import pytest
from ipv8.messaging.interfaces.udp.endpoint import UDPv4Address

from enerdatx.cluster import groups_of, scenarios
from enerdatx.cluster.light import AddressBook
from enerdatx.crypto import Identity
from enerdatx.lab import Lab
from enerdatx.trustchain.fraud import FraudProof
from enerdatx.trustchain.payload import FraudProofMessage
from tests.trustchain.conftest import sign


def _book(n: int, seed: int = 0) -> tuple[AddressBook, list[bytes]]:
    book = AddressBook(random.Random(seed))
    keys = [bytes([i]) * 32 for i in range(n)]
    for i, key in enumerate(keys):
        book.add(key, UDPv4Address("10.0.0.1", 1000 + i))
    return book, keys


def test_the_book_samples_distinct_keys_outside_the_excluded_ones() -> None:
    book, keys = _book(20)
    excluded = set(keys[:5])
    for count in (1, 4, 15, 40):
        picked = book.sample(count, excluded)
        assert len(picked) == len(set(picked)) == min(count, 15)
        assert not set(picked) & excluded
    assert book.sample(3, keys) == []
    assert sorted(book.sample(10, keys[2:])) == keys[:2]  # most excluded: the fallback path


def test_the_book_samples_uniformly() -> None:
    book, keys = _book(10)
    counts = collections.Counter(key for _ in range(5000) for key in book.sample(2, {keys[0]}))
    assert keys[0] not in counts
    expected = 5000 * 2 / 9
    assert all(abs(c - expected) < 0.15 * expected for c in counts.values()), counts  # 10-sigma margins


def test_moving_a_peer_keeps_one_entry() -> None:
    book, keys = _book(3)
    book.add(keys[1], UDPv4Address("10.0.0.2", 9))
    assert len(book) == 3 and book.addresses[keys[1]] == UDPv4Address("10.0.0.2", 9)


async def test_light_peers_refuse_a_forged_fraud_proof_and_keep_a_real_one(tmp_path) -> None:
    async with Lab(tmp_path, durable=False, progress=False) as lab:
        group = groups_of(lab, light=True).handles[0]
        contacts = await group.start(0, 3)
        await group.add_contacts(contacts)
        sender, receiver = group.peers[0], group.peers[1]
        cheat = Identity.generate()
        first = sign(cheat)
        forged = dataclasses.replace(sign(cheat, transaction={"amount": 2}), transaction={"amount": 3})
        bad = FraudProof.of(first, forged)
        peer = sender.community.peer_for(receiver.public_key)
        sender.community.send(peer, FraudProofMessage(bad.encode()))
        good = FraudProof.of(first, sign(cheat, transaction={"amount": 2}))
        learned: asyncio.Future[FraudProof] = asyncio.get_running_loop().create_future()
        receiver.ledger.on_fraud(lambda proof: learned.done() or learned.set_result(proof))
        sender.community.send(peer, FraudProofMessage(good.encode()))
        # The good proof travels after the bad one (in order, in memory): once it is in, both were read.
        assert await asyncio.wait_for(learned, 10) == good
        assert receiver.store.fraud_proofs(cheat.public_key) == [good]


def test_fraud_scenario_on_light_and_full_peers_reaches_every_honest_peer() -> None:
    for light in (False, True):
        with Lab(tempfile.mkdtemp(), durable=False, progress=False, seed=3) as lab:
            run = scenarios.fraud(lab, peers=24, light=light, refusals=True)
        assert run.figures["honest_with_proof"] == 23 and len(run.times) == 23
        assert run.figures["refused_after_detection"] == 23
        assert (run.times["seconds"] >= 0).all()
        assert run.figures["bytes_sent_per_peer_mean"] > 0
        assert run.figures["light"] is light


@pytest.mark.slow
def test_fraud_with_2000_light_peers_reaches_every_honest_peer() -> None:
    with Lab(tempfile.mkdtemp(), durable=False, progress=False, seed=1) as lab:
        run = scenarios.fraud(lab, peers=2000, light=True)
    assert run.figures["honest_with_proof"] == 1999
    assert run.times["peer"].nunique() == 1999


async def test_a_held_proof_heard_again_only_notes_its_sender(tmp_path, monkeypatch) -> None:
    async with Lab(tmp_path, durable=False, progress=False) as lab:
        group = groups_of(lab, light=True).handles[0]
        await group.start(0, 3)
        first, second, receiver = group.peers[0], group.peers[1], group.peers[2]
        cheat = Identity.generate()
        proof = FraudProof.of(sign(cheat), sign(cheat, transaction={"amount": 2}))
        learned: asyncio.Future[FraudProof] = asyncio.get_running_loop().create_future()
        receiver.ledger.on_fraud(lambda p: learned.done() or learned.set_result(p))
        first.community.send(first.community.peer_for(receiver.public_key), FraudProofMessage(proof.encode()))
        await asyncio.wait_for(learned, 10)
        decoded = []
        original = FraudProof.decode.__func__
        monkeypatch.setattr(FraudProof, "decode", classmethod(lambda cls, data: decoded.append(data) or original(cls, data)))
        noted = asyncio.get_running_loop().create_future()
        rumour = receiver.community._rumours[cheat.public_key]
        holders = type("Holders", (set,), {"add": lambda s, k: (set.add(s, k), k == second.public_key and noted.set_result(k))})
        rumour.holders = holders(rumour.holders)
        second.community.send(second.community.peer_for(receiver.public_key), FraudProofMessage(proof.encode()))
        assert await asyncio.wait_for(noted, 10) == second.public_key
        assert decoded == []  # the packet was known: no second decode
        assert receiver.store.fraud_proofs(cheat.public_key) == [proof]


async def test_light_peers_refuse_forged_blocks_as_full_peers_do(tmp_path) -> None:
    from enerdatx.trustchain.payload import BlockBroadcastMessage

    async with Lab(tmp_path, durable=False, progress=False) as lab:
        group = groups_of(lab, light=True).handles[0]
        await group.start(0, 2)
        sender, receiver = group.peers[0], group.peers[1]
        stranger = Identity.generate()
        genuine = sign(stranger)
        forged = dataclasses.replace(sign(stranger, sequence_number=2, previous_hash=genuine.hash),
                                     transaction={"amount": 1_000_000})
        stored: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        receiver.ledger.subscribe(lambda block: block.hash == genuine.hash and not stored.done()
                                  and stored.set_result(block))
        peer = sender.community.peer_for(receiver.public_key)
        sender.community.send(peer, BlockBroadcastMessage(1, forged.encode()))
        sender.community.send(peer, BlockBroadcastMessage(1, genuine.encode()))
        await asyncio.wait_for(stored, 10)  # in order, in memory: the forged block was read first
        assert receiver.store.get(stranger.public_key, 1) == genuine
        assert receiver.store.get(stranger.public_key, 2) is None
