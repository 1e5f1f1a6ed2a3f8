"""Wire messages, keys shared by both layers, limits and the command line's address syntax."""

from __future__ import annotations

import argparse
from pathlib import Path

import nacl.signing
import pytest
from ipv8.keyvault.crypto import default_eccrypto
from ipv8.messaging.serialization import default_serializer

from enerdatx.cli.peer import parse_address, parse_contact
from enerdatx.crypto import Identity, verify_signature
from enerdatx.lab import Lab
from enerdatx.overlay import AnswerBudget, TokenBucket
from enerdatx.trustchain.keys import ipv8_private_key, ipv8_public_key_bin
from enerdatx.trustchain.payload import (
    MESSAGES,
    SIGNED_OVERHEAD,
    UNSIGNED,
    UNSIGNED_OVERHEAD,
    CrawlRequestMessage,
    CrawlResponseMessage,
    RejectionMessage,
)

EXAMPLES = {
    "ProposalMessage": {"block": b"p" * 202, "history": [b"h" * 202, b"i" * 180]},
    "AgreementMessage": {"block": b"a" * 202},
    "RejectionMessage": {"sequence_number": 7, "reason": "fraud"},
    "CrawlRequestMessage": {"identifier": 2**32 - 1, "public_key": bytes(range(32)), "start": 1, "end": 0},
    "CrawlResponseMessage": {"identifier": 9, "total": 2, "blocks": [b"x" * 10, b"y" * 300]},
    "BlockBroadcastMessage": {"ttl": 2, "block": b"b" * 202},
    "FraudProofMessage": {"proof": b"f" * 420},
}


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.__name__)
def test_messages_round_trip(message: type) -> None:
    original = message(**EXAMPLES[message.__name__])
    packed = default_serializer.pack_serializable(original)
    decoded, used = default_serializer.unpack_serializable(message, packed)
    assert decoded == original and used == len(packed)


def test_message_ids_are_unique_and_stable() -> None:
    assert [m.msg_id for m in MESSAGES] == [1, 2, 3, 4, 5, 6, 7]
    assert {m.__name__ for m in UNSIGNED} == {
        "AgreementMessage", "CrawlResponseMessage", "BlockBroadcastMessage", "FraudProofMessage"
    }


def test_truncated_message_does_not_decode() -> None:
    packed = default_serializer.pack_serializable(CrawlRequestMessage(1, bytes(32), 1, 0))
    with pytest.raises(Exception):  # noqa: B017 - pyipv8 raises its own PackError
        default_serializer.unpack_serializable(CrawlRequestMessage, packed[:-1])


def test_overheads_match_real_packets(tmp_path: Path) -> None:
    with Lab(tmp_path) as lab:
        (peer,) = lab.run_sync(lab.start(1))
        for payload in (RejectionMessage(1, "x"), CrawlResponseMessage(1, 0, [])):
            body = len(default_serializer.pack_serializable(payload))
            signed = not isinstance(payload, UNSIGNED)
            packet = peer.community.ezr_pack(payload.msg_id, payload, sig=signed)
            assert len(packet) == body + (SIGNED_OVERHEAD if signed else UNSIGNED_OVERHEAD)


def test_ipv8_key_signs_as_the_identity() -> None:
    identity = Identity.from_seed(bytes(range(32)))
    key = ipv8_private_key(identity)
    assert key.pub().key_to_bin() == ipv8_public_key_bin(identity.public_key)
    assert verify_signature(identity.public_key, b"message", key.signature(b"message"))
    assert key.signature(b"message") == identity.sign(b"message")


def test_the_ipv8_key_of_a_peer_made_elsewhere_is_converted_to_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    ours, theirs = Identity.generate(), Identity.generate()
    made_here = ipv8_private_key(ours).pub().key_to_bin()
    expected = default_eccrypto.key_from_private_bin(  # theirs, made without telling this process
        b"LibNaCLSK:" + bytes(theirs.signing_key.to_curve25519_private_key()) + theirs.seed).pub().key_to_bin()
    assert ipv8_public_key_bin(theirs.public_key) == expected
    # A peer of this process is looked up, not converted (60-75 µs each, by the thousand).
    monkeypatch.setattr(nacl.signing.VerifyKey, "to_curve25519_public_key", None)
    assert ipv8_public_key_bin(ours.public_key) == made_here


def test_token_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=0.0, burst=3)
    assert [bucket.take() for _ in range(5)] == [True, True, True, False, False]
    fast = TokenBucket(rate=1e9, burst=1)
    assert all(fast.take() for _ in range(100))


def test_answer_budget_lets_one_answer_into_debt_then_refuses_the_address() -> None:
    budget = AnswerBudget(rate=0.0, burst=100)
    assert budget.allows("a")
    budget.spend("a", 250)  # more than the burst: it still went, and the address owes for it
    assert not budget.allows("a")
    assert budget.allows("b")  # another address has its own budget


@pytest.mark.parametrize("text", ["nohost", ":80", "host:", "host:0", "host:70000", "host:x"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_address(text)


def test_addresses_and_contacts_parse() -> None:
    assert parse_address("10.0.0.2:7759") == ("10.0.0.2", 7759)
    assert parse_address("localhost:7759") == ("127.0.0.1", 7759)
    key = Identity.from_seed(bytes(range(32))).public_key  # 32 bytes that are a key (bytes(range(32)) is none)
    assert parse_contact(f"{key.hex()}@127.0.0.1:9") == (key, ("127.0.0.1", 9))
    with pytest.raises(argparse.ArgumentTypeError):
        parse_contact("abcd@127.0.0.1:9")


def test_the_largest_fraud_proof_fits_one_datagram():
    from ipv8.messaging.serialization import default_serializer

    from enerdatx.crypto import Identity
    from enerdatx.trustchain import FraudProof, HalfBlock
    from enerdatx.trustchain.encoding import MAX_BLOCK_SIZE, MAX_TRANSACTION_SIZE, MAX_TYPE_SIZE
    from enerdatx.trustchain.payload import FraudProofMessage

    forker = Identity.generate()

    def biggest(tag: bytes) -> HalfBlock:
        # CBOR: 1 byte opens the map, 2 encode the key "x", 3 head the byte string.
        return HalfBlock.create(
            forker, sequence_number=1, previous_hash=bytes(32), link_public_key=bytes(32),
            link_sequence_number=0, block_type="t" * MAX_TYPE_SIZE,
            transaction={"x": tag * (MAX_TRANSACTION_SIZE - 6)},
        )  # fmt: skip

    proof = FraudProof.of(biggest(b"a"), biggest(b"b"))
    packet = default_serializer.pack_serializable(FraudProofMessage(proof.encode()))
    assert len(proof.block_a.encode()) == MAX_BLOCK_SIZE
    assert len(packet) + 163 <= 65_507


def _pyipv8_pack(community: object, payload: object) -> bytes:
    """The packet pyipv8's own code makes (its OpenSSL binding signs)."""
    from ipv8.lazy_community import EZPackOverlay

    original = EZPackOverlay._ez_pack
    try:
        type(community)._ez_pack = original  # type: ignore[method-assign, attr-defined]
        return community.ezr_pack(payload.msg_id, payload)  # type: ignore[attr-defined, no-any-return]
    finally:
        del type(community)._ez_pack  # type: ignore[attr-defined]


def test_libsodium_packet_signatures_match_pyipv8s_and_refuse_forgeries(tmp_path: Path) -> None:
    from ipv8.lazy_community import EZPackOverlay
    from ipv8.messaging.payload_headers import BinMemberAuthenticationPayload

    with Lab(tmp_path) as lab:
        first, second = lab.run_sync(lab.start(2))
        community = first.community
        payload = RejectionMessage(3, "x" * 40)
        ours = community.ezr_pack(payload.msg_id, payload)
        assert ours == _pyipv8_pack(community, payload)  # Ed25519 is deterministic: the same bytes

        def check(packet: bytes) -> bool:
            auth, _ = default_serializer.unpack_serializable(BinMemberAuthenticationPayload, packet, offset=23)
            valid, _ = second.community._verify_signature(auth, packet)
            return bool(valid)

        def pyipv8_check(packet: bytes) -> bool:
            auth, _ = default_serializer.unpack_serializable(BinMemberAuthenticationPayload, packet, offset=23)
            return bool(EZPackOverlay._verify_signature(second.community, auth, packet)[0])

        tampered = bytearray(ours)
        tampered[-70] ^= 1  # a payload byte
        resigned_by_other = ours[:-64] + second.community.ezr_pack(payload.msg_id, payload)[-64:]
        flipped_signature = ours[:-1] + bytes([ours[-1] ^ 0x80])
        assert check(ours) and pyipv8_check(ours)
        for forged in (bytes(tampered), resigned_by_other, flipped_signature, ours[:-1]):
            assert not check(forged)
            assert not pyipv8_check(forged)  # pyipv8 refuses each one as well


def test_a_small_order_key_is_refused(tmp_path: Path) -> None:
    """The identity point as a public key: (R = identity, S = 0) checks out for every message in
    plain Ed25519 arithmetic, so anyone could sign as that key. libsodium refuses such keys;
    pyipv8 3.2's OpenSSL binding accepted this very packet (checked when this test was written)."""
    from ipv8.messaging.payload_headers import BinMemberAuthenticationPayload

    identity_point = bytes([1]) + bytes(31)
    key_bin = b"LibNaCLPK:" + bytes(32) + identity_point
    with Lab(tmp_path) as lab:
        (peer,) = lab.run_sync(lab.start(1))
        body = default_serializer.pack_serializable(BinMemberAuthenticationPayload(key_bin)) + b"payload"
        packet = bytes(23) + body + identity_point + bytes(32)
        auth, _ = default_serializer.unpack_serializable(BinMemberAuthenticationPayload, packet, offset=23)
        assert peer.community._verify_signature(auth, packet)[0] is False


def test_gossip_sends_every_recipient_the_bytes_packed_for_one(tmp_path: Path, monkeypatch) -> None:
    # A gossiped block is packed once per ttl, not once per recipient; each copy must still be
    # exactly the packet pyipv8 would build for that recipient alone.
    from enerdatx.trustchain.payload import BlockBroadcastMessage
    from tests.support.blocks import sign

    with Lab(tmp_path) as lab:
        peers = lab.run_sync(lab.start(12))
        community = peers[0].community
        block = sign(peers[1].identity, link_public_key=peers[2].public_key)
        sent: list[tuple[object, bytes]] = []
        monkeypatch.setattr(community.endpoint, "send", lambda address, packet: sent.append((address, packet)))
        packs = 0
        pack = community.ezr_pack

        def counting_pack(*args, **kwargs):
            nonlocal packs
            packs += 1
            return pack(*args, **kwargs)

        monkeypatch.setattr(community, "ezr_pack", counting_pack)
        community._publish(block)
    expected = pack(BlockBroadcastMessage.msg_id, BlockBroadcastMessage(1, block.encode()), sig=False)
    assert len(sent) == 8 and len({address for address, _ in sent}) == 8  # fanout 4 and witnesses 4, all distinct
    assert all(packet == expected for _, packet in sent)
    assert packs == 2  # one for the fanout's ttl, one for the witnesses'
    assert community.packets_sent >= 8 and community.bytes_sent >= 8 * len(expected)
