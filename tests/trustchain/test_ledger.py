import pytest

from enerdatx.crypto import Identity
from enerdatx.errors import (
    ConfigurationError,
    EncodingError,
    FraudDetectedError,
    InvalidBlockError,
    StorageError,
    TransactionRejectedError,
)
from enerdatx.trustchain import BlockStore, FraudProof, HalfBlock, TrustChain, ValidationLevel
from tests.support.blocks import PAY, sign, transact


def test_a_transaction_is_stored_by_both_sides(alice, bob):
    proposal, agreement = transact(alice, bob, amount=7)
    for ledger in (alice, bob):
        assert ledger.store.get(alice.public_key, 1) == proposal
        assert ledger.store.get(bob.public_key, 1) == agreement
        assert ledger.store.linked(proposal) == agreement
        assert ledger.store.linked(agreement) == proposal
    assert agreement.link_sequence_number == proposal.sequence_number
    assert agreement.transaction == {"amount": 7}


def test_chains_grow_and_link_by_hash(alice, bob, carol):
    transact(alice, bob)
    transact(bob, carol)
    transact(carol, alice)
    for ledger in (alice, bob, carol):
        chain = ledger.store.chain(ledger.public_key)
        assert [block.sequence_number for block in chain] == [1, 2]
        assert chain[1].previous_hash == chain[0].hash
        assert ledger.head == chain[-1]


def test_policy_sets_the_agreement_transaction(alice, bob):
    bob.register_policy("edx.sale", lambda ledger, proposal: {**proposal.transaction, "key": b"k" * 8})
    proposal = alice.propose(bob.public_key, "edx.sale", {"price": 3})
    agreement = bob.countersign(proposal)
    assert agreement.transaction == {"price": 3, "key": b"k" * 8}


def test_a_refusing_policy_leaves_nothing_signed(alice, bob):
    def refuse(ledger, proposal):
        raise TransactionRejectedError("balance too low")

    bob.register_policy("edx.sale", refuse)
    proposal = alice.propose(bob.public_key, "edx.sale", {"price": 3})
    with pytest.raises(TransactionRejectedError, match="balance"):
        bob.countersign(proposal)
    assert bob.store.count() == 0 and bob.head is None


def test_nothing_is_signed_while_signing_is_held_and_signing_resumes_after(alice, bob):
    proposal = alice.propose(bob.public_key, PAY, {"amount": 1})
    with bob.signing_held("catching_up"):
        for sign_something in (lambda: bob.countersign(proposal), lambda: bob.record("edx.note", {}),
                               lambda: bob.propose(alice.public_key, PAY, {"amount": 2})):
            with pytest.raises(TransactionRejectedError, match="catching_up"):
                sign_something()
        with pytest.raises(RuntimeError, match="held already"):
            with bob.signing_held("again"):
                pass
        assert bob.head is None and bob.store.chain(bob.public_key) == []
        alice.record("edx.note", {})  # another ledger signs as before
    assert bob.countersign(proposal).sequence_number == 1


def test_proposals_without_a_policy_are_refused(alice, bob):
    proposal = alice.propose(bob.public_key, "edx.unknown", {})
    with pytest.raises(TransactionRejectedError, match="no policy"):
        bob.countersign(proposal)


def test_countersigning_again_returns_the_same_agreement(alice, bob):
    proposal = alice.propose(bob.public_key, PAY, {"amount": 1})
    first = bob.countersign(proposal)
    again = bob.countersign(HalfBlock.decode(proposal.encode()))
    assert again == first and bob.store.count() == 2


def test_only_proposals_addressed_to_us_are_countersigned(alice, bob, carol):
    proposal = alice.propose(bob.public_key, PAY, {"amount": 1})
    with pytest.raises(InvalidBlockError, match="not_addressed_to_us"):
        carol.countersign(proposal)
    agreement = bob.countersign(proposal)
    with pytest.raises(InvalidBlockError, match="not_addressed_to_us"):
        alice.countersign(agreement)


def test_invalid_proposals_are_refused(alice, bob):
    forged = sign(alice.identity, link_public_key=bob.public_key, sequence_number=0)
    with pytest.raises(InvalidBlockError, match="bad_sequence_number"):
        bob.countersign(forged)
    assert bob.store.count() == 0


def test_proposing_to_ourselves_is_refused(alice):
    with pytest.raises(InvalidBlockError):
        alice.propose(alice.public_key, PAY, {})


def test_a_forker_is_refused_by_an_honest_peer(alice, bob, carol):
    proposal = alice.propose(bob.public_key, PAY, {"amount": 5})
    bob.countersign(proposal)
    # Alice signs a second block at the same sequence number, paying Carol.
    double = sign(alice.identity, link_public_key=carol.public_key, transaction={"amount": 5})
    carol.countersign(double)
    carol.receive(proposal)  # gossip reaches Carol
    assert carol.is_fraudulent(alice.public_key)
    proof = carol.store.fraud_proofs(alice.public_key)[0]
    assert proof.verify() and {proof.block_a, proof.block_b} == {proposal, double}
    # The proof travels to Bob, who then refuses Alice.
    assert bob.receive_fraud_proof(FraudProof.decode(proof.encode()))
    later = alice.propose(bob.public_key, PAY, {"amount": 1})
    with pytest.raises(FraudDetectedError):
        bob.countersign(later)
    with pytest.raises(FraudDetectedError):
        bob.propose(alice.public_key, PAY, {})


def test_a_fork_offered_for_countersigning_is_detected(alice, bob):
    first = alice.propose(bob.public_key, PAY, {"amount": 1})
    bob.countersign(first)
    fork = sign(alice.identity, link_public_key=bob.public_key, transaction={"amount": 2})
    with pytest.raises(FraudDetectedError):
        bob.countersign(fork)
    assert bob.is_fraudulent(alice.public_key)


def test_fraud_listeners_hear_each_proof_once(alice, bob):
    heard = []
    bob.on_fraud(heard.append)
    first = sign(alice.identity)
    bob.receive(first)
    bob.receive(sign(alice.identity, transaction={"amount": 2}))
    bob.receive(sign(alice.identity, transaction={"amount": 3}))
    assert len(heard) == 1 and heard[0].public_key == alice.public_key


def test_a_forged_fraud_proof_is_ignored(alice, bob):
    honest = sign(alice.identity)
    framed = sign(Identity.generate())  # someone else's block
    assert not FraudProof.of(honest, framed).verify()
    assert not bob.receive_fraud_proof(FraudProof.of(honest, framed))
    assert not bob.is_fraudulent(alice.public_key)


def test_subscribers_hear_new_blocks_once(alice, bob):
    heard = []
    bob.subscribe(heard.append)
    proposal, agreement = transact(alice, bob)
    bob.receive(proposal)
    assert heard == [proposal, agreement]


def test_missing_before_names_what_to_crawl(alice, bob):
    owner = TrustChain(Identity.generate(), BlockStore(fsync=False))
    blocks = [owner.record(PAY, {"n": n}) for n in range(6)]
    assert list(bob.missing_before(blocks[5])) == [1, 2, 3, 4, 5]
    bob.receive_many(blocks[:2])
    assert list(bob.missing_before(blocks[5])) == [3, 4, 5]
    bob.receive(blocks[3])
    assert list(bob.missing_before(blocks[5])) == [3, 4, 5]
    bob.receive_many([blocks[2], blocks[4]])
    assert list(bob.missing_before(blocks[5])) == []
    assert bob.chain_level(owner.public_key) is ValidationLevel.VALID


def test_receive_many_validates_each_block_against_the_ones_before(bob):
    owner = TrustChain(Identity.generate(), BlockStore(fsync=False))
    blocks = [owner.record(PAY, {"n": n}) for n in range(50)]
    results = bob.receive_many(blocks)
    assert [r.level for r in results[:-1]] == [ValidationLevel.PARTIAL_NEXT] * 49
    assert bob.store.chain(owner.public_key) == blocks


def test_restart_continues_the_chain(tmp_path):
    identity = Identity.generate()
    store = BlockStore(tmp_path / "chain.sqlite")
    ledger = TrustChain(identity, store)
    first = ledger.record(PAY, {"n": 1})
    store.close()
    reopened = TrustChain(identity, BlockStore(tmp_path / "chain.sqlite"))
    second = reopened.record(PAY, {"n": 2})
    assert second.sequence_number == 2 and second.previous_hash == first.hash


def test_our_own_lost_block_returned_by_a_peer_becomes_our_head(alice, bob):
    proposal, _ = transact(alice, bob)
    fresh = TrustChain(alice.identity, BlockStore(fsync=False))  # Alice lost her database
    assert not fresh.receive(bob.store.get(alice.public_key, 1)).is_invalid
    assert fresh.head == proposal
    assert fresh.record(PAY, {}).sequence_number == 2


@pytest.mark.parametrize(("key", "shown"), [(None, "NoneType"), ("a" * 32, "str"), (b"k" * 31, "31 bytes")])
def test_a_counterparty_that_is_no_public_key_is_an_encoding_error(alice, key, shown):
    # None was a TypeError from len(); 32 characters of text got as far as struct.
    with pytest.raises(EncodingError, match=f"public keys are 32 bytes, not {shown}$"):
        alice.propose(key, PAY, {"amount": 1})
    assert alice.store.chain(alice.public_key) == []


@pytest.mark.parametrize("policy", [None, "accept", {"amount": 1}])
def test_a_policy_that_is_no_function_is_refused_when_registered(alice, policy):
    # Round 15: it was kept, and the first proposal of that type raised TypeError in the countersigner.
    with pytest.raises(TypeError, match=f"a policy is a function .* not {type(policy).__name__}$"):
        alice.register_policy(PAY, policy)


@pytest.mark.parametrize("thing", [None, "identity", b"k" * 32])
def test_a_ledger_needs_an_identity_and_a_block_store(thing):
    # Round 15: each was an AttributeError ('NoneType' object has no attribute 'public_key').
    with pytest.raises(TypeError, match=f"identity is an Identity .* not {type(thing).__name__}$"):
        TrustChain(thing, BlockStore(fsync=False))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=f"store is a BlockStore .* not {type(thing).__name__}$"):
        TrustChain(Identity.generate(), thing)  # type: ignore[arg-type]


@pytest.mark.parametrize("thing", [None, 5, b"bytes of a block"])
def test_receive_takes_blocks_only(alice, thing):
    with pytest.raises(TypeError, match=f"receive takes a HalfBlock .* not {type(thing).__name__}$"):
        alice.receive(thing)  # an AttributeError on .public_key
    with pytest.raises(TypeError, match="receive takes a HalfBlock"):
        alice.receive_many([thing])


@pytest.mark.parametrize("thing", [None, "proposal", b"bytes of a block"])
def test_countersign_takes_blocks_only(bob, thing):
    with pytest.raises(TypeError, match=f"countersign takes a HalfBlock .* not {type(thing).__name__}$"):
        bob.countersign(thing)  # an AttributeError on .link_public_key
    assert bob.store.count() == 0


def test_a_closed_store_says_so_by_name(tmp_path, alice):
    store = BlockStore(tmp_path / "chain.sqlite", fsync=False)
    ledger = TrustChain(alice.identity, store)
    ledger.record(PAY, {"amount": 1})
    store.close()
    for use in (lambda: ledger.record(PAY, {"amount": 2}), store.count, lambda: store.chain(alice.public_key)):
        with pytest.raises(StorageError, match="cannot use the block store: it is closed"):  # was sqlite3.ProgrammingError
            use()
    store.close()  # a second close is harmless
    with BlockStore(tmp_path / "chain.sqlite", fsync=False) as reopened:
        assert [block.transaction for block in reopened.chain(alice.public_key)] == [{"amount": 1}]


@pytest.mark.parametrize("path", [None, 5, b"chain.sqlite"])
def test_a_store_path_that_is_no_path_is_refused_not_made_a_file_of(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=f"expected a block store path .*, got {path!r}$"):
        BlockStore(path)  # str(None) made a database file named "None" in the working directory
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("blank", ["", " "])
def test_a_blank_store_path_is_refused_not_a_hidden_temporary_database(blank):
    with pytest.raises(ConfigurationError, match=f"expected a block store path .*, got {blank!r}"):
        BlockStore(blank)  # SQLite made a private temporary file of ""
