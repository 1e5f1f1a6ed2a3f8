import dataclasses

import pytest

from enerdatx.crypto import Identity
from enerdatx.trustchain import GENESIS_HASH, NO_COUNTERPARTY, HalfBlock, Rule, ValidationLevel
from enerdatx.trustchain.block import now_ms
from enerdatx.trustchain.validation import MAX_CLOCK_SKEW_MS, MIN_TIMESTAMP
from tests.support.blocks import PAY, sign, transact


def reasons(ledger, block):
    result = ledger.validate(block)
    assert result.is_invalid
    return set(result.reasons)


def test_a_fresh_genesis_block_is_partial_next(alice, bob):
    block = sign(Identity.generate())
    assert alice.validate(block).level is ValidationLevel.PARTIAL_NEXT


def test_levels_follow_what_is_held(alice):
    owner = Identity.generate()
    chain = [sign(owner)]
    for n in range(2, 6):
        chain.append(sign(owner, sequence_number=n, previous_hash=chain[-1].hash))
    # Nothing of the chain held: a block in the middle gives no information.
    assert alice.validate(chain[2]).level is ValidationLevel.NO_INFO
    alice.receive(chain[0])
    assert alice.validate(chain[2]).level is ValidationLevel.PARTIAL
    alice.receive(chain[3])
    assert alice.validate(chain[2]).level is ValidationLevel.PARTIAL_PREVIOUS
    alice.receive(chain[1])
    assert alice.validate(chain[2]).level is ValidationLevel.VALID
    assert alice.validate(chain[4]).level is ValidationLevel.PARTIAL_NEXT


@pytest.mark.parametrize(
    "fields, rule",
    [
        ({"sequence_number": 0}, Rule.BAD_SEQUENCE_NUMBER),
        ({"sequence_number": 1, "previous_hash": b"\x07" * 32}, Rule.GENESIS_PREVIOUS_HASH),
        ({"sequence_number": 2, "previous_hash": GENESIS_HASH}, Rule.MISSING_PREVIOUS_HASH),
        ({"link_sequence_number": 4}, Rule.RECORD_WITH_LINK_SEQUENCE),
        ({"timestamp": MIN_TIMESTAMP - 1}, Rule.TIMESTAMP_OUT_OF_RANGE),
        ({"timestamp": "future"}, Rule.TIMESTAMP_OUT_OF_RANGE),
    ],
)
def test_invariant_rules(alice, fields, rule):
    if fields.get("timestamp") == "future":  # computed now, not when the tests were collected
        fields = {"timestamp": now_ms() + MAX_CLOCK_SKEW_MS + 60_000}
    assert rule.value in reasons(alice, sign(Identity.generate(), **fields))


def test_self_link_is_invalid(alice):
    owner = Identity.generate()
    assert Rule.SELF_LINK.value in reasons(alice, sign(owner, link_public_key=owner.public_key))


def test_bad_signature_is_invalid(alice):
    block = sign(Identity.generate())
    forged = dataclasses.replace(block, transaction={"amount": 1_000_000})
    assert reasons(alice, forged) == {Rule.BAD_SIGNATURE.value}
    other_signer = dataclasses.replace(block, public_key=Identity.generate().public_key)
    assert Rule.BAD_SIGNATURE.value in reasons(alice, other_signer)


def test_malformed_fields_are_invalid(alice):
    block = sign(Identity.generate())
    assert reasons(alice, dataclasses.replace(block, signature=b"\x00" * 10)) == {Rule.MALFORMED.value}
    assert reasons(alice, dataclasses.replace(block, previous_hash=b"\x00" * 31)) == {Rule.MALFORMED.value}


def test_oversized_fields_are_invalid(alice):
    block = sign(Identity.generate())
    huge = dataclasses.replace(block, transaction={"x": "y" * 40_000})
    assert Rule.MALFORMED.value in reasons(alice, huge)


def test_wrong_previous_hash(alice):
    owner = Identity.generate()
    first = sign(owner)
    alice.receive(first)
    assert reasons(alice, sign(owner, sequence_number=2, previous_hash=b"\x09" * 32)) == {
        Rule.PREVIOUS_HASH_MISMATCH.value
    }


def test_next_block_that_does_not_point_back(alice):
    owner = Identity.generate()
    first = sign(owner)
    second = sign(owner, sequence_number=2, previous_hash=first.hash)
    alice.receive(second)
    other_first = sign(owner, transaction={"amount": 99})
    assert Rule.NEXT_HASH_MISMATCH.value in reasons(alice, other_first)


def test_a_fork_is_invalid_and_proven(alice):
    owner = Identity.generate()
    alice.receive(sign(owner))
    fork = sign(owner, transaction={"amount": 2})
    result = alice.receive(fork)
    assert result.reasons == (Rule.FORK.value,)
    assert alice.is_fraudulent(owner.public_key)
    assert alice.store.get(owner.public_key, 1) != fork  # the held block stays


def test_linked_blocks_that_disagree(alice, bob, carol):
    proposal = alice.propose(bob.public_key, PAY, {"amount": 1})
    carol.receive(proposal)
    # Carol claims to agree to a proposal addressed to Bob.
    wrong_party = sign(carol.identity, link_public_key=alice.public_key, link_sequence_number=1)
    assert reasons(carol, wrong_party) == {Rule.LINKED_MISMATCH.value}
    # Bob agrees but with a different block type.
    wrong_type = sign(bob.identity, link_public_key=alice.public_key, link_sequence_number=1, block_type="other")
    carol.receive(sign(Identity.generate()))  # unrelated traffic changes nothing
    assert reasons(carol, wrong_type) == {Rule.LINKED_MISMATCH.value}


def test_an_agreement_to_a_record_disagrees(alice, bob):
    record = alice.record(PAY, {"note": 1})
    bob.receive(record)
    agreement = sign(bob.identity, link_public_key=alice.public_key, link_sequence_number=record.sequence_number)
    assert reasons(bob, agreement) == {Rule.LINKED_MISMATCH.value}


def test_a_proposal_that_disagrees_with_a_held_agreement(alice, bob, carol):
    proposal = alice.propose(bob.public_key, PAY, {"amount": 1})
    agreement = bob.countersign(proposal)
    carol.receive(agreement)  # agreement first, proposal not yet known
    # Alice signs another block at the same place, addressed to Carol. Carol cannot tell yet
    # whether Alice forked or Bob's agreement is bogus: the proposal decides...
    other = sign(alice.identity, link_public_key=carol.public_key)
    assert other.sequence_number == proposal.sequence_number
    assert not carol.receive(other).is_invalid
    assert carol.store.get(bob.public_key, 1) is None
    # ...and when Alice's proposal to Bob turns up, the fork is proven.
    assert carol.receive(proposal).reasons == ("fork",)
    assert carol.is_fraudulent(alice.public_key)


def test_an_agreement_of_another_type_disagrees(alice, bob, carol):
    proposal = alice.propose(bob.public_key, PAY, {"amount": 1})
    wrong_type = sign(bob.identity, link_public_key=alice.public_key, link_sequence_number=1, block_type="other")
    carol.receive(wrong_type)
    assert reasons(carol, proposal) == {Rule.LINKED_MISMATCH.value}


def test_a_proposal_countersigned_twice(alice, bob, carol):
    proposal, agreement = transact(alice, bob)
    carol.receive(proposal)
    carol.receive(agreement)
    second = sign(
        bob.identity,
        sequence_number=2,
        previous_hash=agreement.hash,
        link_public_key=alice.public_key,
        link_sequence_number=proposal.sequence_number,
    )
    assert reasons(carol, second) == {Rule.DOUBLE_COUNTERSIGN.value}


def test_an_already_held_block_is_not_revalidated(alice, bob, monkeypatch):
    proposal, _ = transact(alice, bob)
    calls = []
    monkeypatch.setattr(HalfBlock, "verify_signature", lambda self: calls.append(self) or True)
    assert not bob.receive(proposal).is_invalid
    assert calls == []


def test_records_need_no_counterparty(alice):
    record = alice.record("edx.note", {"text": "hello"})
    assert record.link_public_key == NO_COUNTERPARTY and record.is_record
    assert not alice.validate(record).is_invalid


def test_an_impostor_agreement_cannot_block_the_real_pair(alice, bob, carol):
    mallory = Identity.generate()
    proposal = alice.propose(bob.public_key, PAY, {"amount": 1})
    impostor = sign(mallory, link_public_key=alice.public_key, link_sequence_number=proposal.sequence_number)
    assert not carol.receive(impostor).is_invalid  # the proposal is not known yet
    assert not carol.receive(proposal).is_invalid
    assert carol.store.get(mallory.public_key, 1) is None  # shown invalid, dropped
    agreement = bob.countersign(proposal)
    assert not carol.receive(agreement).is_invalid
    assert carol.store.linked(proposal) == agreement
