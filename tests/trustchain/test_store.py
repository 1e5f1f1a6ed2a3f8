import os
import sqlite3

import pytest

from enerdatx.crypto import Identity
from enerdatx.errors import StorageError
from enerdatx.trustchain import BlockStore, FraudProof, HalfBlock, TrustChain
from tests.support.blocks import PAY, sign, transact


def test_an_exception_inside_a_write_leaves_nothing_behind(tmp_path):
    store = BlockStore(tmp_path / "s.sqlite")
    owner = Identity.generate()
    first = sign(owner)
    second = sign(owner, sequence_number=2, previous_hash=first.hash)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.insert_validated([first, second])
            raise RuntimeError("crash between writes")
    assert store.count() == 0
    assert store.get(owner.public_key, 1) is None  # caches did not keep the rolled-back block
    assert store.latest_sequence_number(owner.public_key) == 0
    reopened = BlockStore(tmp_path / "s.sqlite")
    assert reopened.count() == 0


def test_a_failing_insert_rolls_back_the_whole_pair(tmp_path, monkeypatch, alice, bob):
    proposal = alice.propose(bob.public_key, PAY, {"amount": 1})
    original = bob.store.insert_validated

    def insert_then_fail(blocks):
        original(blocks)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(bob.store, "insert_validated", insert_then_fail)
    with pytest.raises(StorageError, match="disk I/O error"):  # SQLite's errors become typed ones
        bob.countersign(proposal)
    monkeypatch.undo()
    assert bob.store.count() == 0 and bob.head is None
    agreement = bob.countersign(proposal)  # and it can still sign afterwards, at sequence 1
    assert agreement.sequence_number == 1


def test_fraud_proofs_survive_a_restart(tmp_path):
    owner = Identity.generate()
    proof = FraudProof.of(sign(owner), sign(owner, transaction={"amount": 9}))
    store = BlockStore(tmp_path / "s.sqlite")
    assert store.add_fraud_proof(proof)
    assert not store.add_fraud_proof(proof)
    store.close()
    reopened = BlockStore(tmp_path / "s.sqlite")
    assert reopened.is_fraudulent(owner.public_key)
    assert reopened.fraud_proofs(owner.public_key) == [proof]
    assert reopened.fraud_proofs() == [proof]


def test_queries(alice, bob, carol):
    for _ in range(3):
        transact(alice, bob)
    transact(alice, carol)
    store = alice.store
    assert store.count() == 8
    assert store.latest_sequence_number(alice.public_key) == 4
    assert store.head(alice.public_key).sequence_number == 4
    assert [b.sequence_number for b in store.chain(alice.public_key, 2, 3)] == [2, 3]
    assert store.chain_encoded(alice.public_key, 2) == [b.encode() for b in store.chain(alice.public_key, 2)]
    assert [HalfBlock.decode(data).sequence_number for data in store.chain_encoded(alice.public_key)] == [1, 2, 3, 4]
    assert store.get_by_hash(store.get(bob.public_key, 2).hash).sequence_number == 2
    assert set(store.public_keys()) == {alice.public_key, bob.public_key, carol.public_key}
    assert len(list(store.blocks(block_type=PAY))) == 8
    assert store.get(alice.public_key, 99) is None
    assert store.held_sequence_numbers(bob.public_key, 1, 10) == [1, 2, 3]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(1, 2**64, [1]), (2**70, None, []), (-(2**70), 2**64, [1]), (2**64, 2**70, []), (1, -(2**70), [])],
)
def test_ranges_past_any_sequence_number_find_what_is_held_in_them(alice, start, end, expected):
    # Round 15: a bound past SQLite's 64-bit integers raised OverflowError.
    alice.record(PAY, {})
    assert [b.sequence_number for b in alice.store.chain(alice.public_key, start, end)] == expected
    assert len(alice.store.chain(alice.public_key, start, end, block_type=PAY)) == len(expected)
    assert len(alice.store.chain_encoded(alice.public_key, start, end)) == len(expected)
    if end is not None:
        assert alice.store.held_sequence_numbers(alice.public_key, start, end) == expected


def test_a_backup_that_cannot_be_written_is_a_storage_error_naming_the_target(tmp_path):
    # Round 15: sqlite3.OperationalError "unable to open database file" / "disk I/O error", naming nothing.
    store = BlockStore(tmp_path / "s.sqlite", fsync=False)
    TrustChain(Identity.generate(), store).record(PAY, {})
    os.mkfifo(tmp_path / "fifo")
    for target in (tmp_path, tmp_path / "missing" / "b.sqlite", tmp_path / "fifo"):
        with pytest.raises(StorageError, match=f"^{target}: cannot write a block store backup: "):
            store.backup(target)
    # It returned as if done, and no copy of the chain was made anywhere.
    with pytest.raises(StorageError, match="onto its own file"):
        store.backup(tmp_path / "." / "s.sqlite")
    store.backup(tmp_path / "b.sqlite")
    assert BlockStore(tmp_path / "b.sqlite").count() == 1
    store.close()


def test_the_store_never_holds_a_block_the_ledger_refused(alice):
    owner = Identity.generate()
    bad = sign(owner, sequence_number=0)
    alice.receive(bad)
    assert alice.store.count() == 0


def test_wal_mode_and_a_schema_version(tmp_path):
    store = BlockStore(tmp_path / "s.sqlite")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="schema version 99"):
        BlockStore(tmp_path / "s.sqlite")


def test_own_blocks_are_written_durably(tmp_path, monkeypatch):
    store = BlockStore(tmp_path / "s.sqlite")
    ledger = TrustChain(Identity.generate(), store)
    seen = []
    real_execute = store._db.execute

    class Spy:
        def execute(self, sql, *args):
            seen.append(sql)
            return real_execute(sql, *args)

        def __getattr__(self, name):
            return getattr(store._db, name)

    store._db = Spy()
    store._synchronous = "NORMAL"
    ledger.record(PAY, {})
    assert "PRAGMA synchronous=FULL" in seen
    assert seen.index("PRAGMA synchronous=FULL") < seen.index("COMMIT")


def test_linked_never_pairs_a_block_with_the_answer_to_its_fork(alice, bob, carol):
    proposal, agreement = transact(alice, bob)
    twin = sign(alice.identity, link_public_key=bob.public_key, transaction={"amount": 2})
    assert twin.sequence_number == proposal.sequence_number
    assert bob.store.linked(proposal) == agreement
    assert bob.store.linked(twin) is None  # Bob's agreement answers the proposal he holds
    stray = sign(carol.identity, link_public_key=alice.public_key, link_sequence_number=1)
    carol.receive(proposal)
    assert carol.store.linked(stray) is None  # the proposal was not addressed to Carol


def test_agreements_for_follows_inserts_removals_and_rollbacks() -> None:
    from enerdatx.crypto import Identity
    from tests.support.blocks import sign

    store = BlockStore(fsync=False)
    owner, signer, other = Identity.generate(), Identity.generate(), Identity.generate()
    proposal = sign(owner, link_public_key=signer.public_key)
    agreement = sign(signer, link_public_key=owner.public_key, link_sequence_number=1)
    impostor = sign(other, link_public_key=owner.public_key, link_sequence_number=1)
    store.insert_validated([proposal])
    assert store.agreements_for(owner.public_key, 1) == []  # remembered
    store.insert_validated([agreement])
    assert store.agreements_for(owner.public_key, 1) == [agreement]
    try:
        with store.transaction(durable=False):
            store.insert_validated([impostor])
            assert sorted(store.agreements_for(owner.public_key, 1), key=lambda b: b.hash) == sorted(
                [agreement, impostor], key=lambda b: b.hash
            )
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert store.agreements_for(owner.public_key, 1) == [agreement]
    store.remove_blocks([agreement])
    assert store.agreements_for(owner.public_key, 1) == []


def test_a_reopened_store_still_finds_agreements_and_refuses_a_second_countersignature(tmp_path) -> None:
    owner, signer = Identity.generate(), Identity.generate()
    proposal = sign(owner, link_public_key=signer.public_key)
    agreement = sign(signer, link_public_key=owner.public_key, link_sequence_number=1)
    second = sign(
        signer, sequence_number=2, previous_hash=agreement.hash, link_public_key=owner.public_key,
        link_sequence_number=1, transaction={"amount": 2},
    )
    with BlockStore(tmp_path / "s.sqlite", fsync=False) as store:
        store.insert_validated([proposal, agreement])
    with BlockStore(tmp_path / "s.sqlite", fsync=False) as store:  # the agreement index is rebuilt from disk
        assert store.agreements_for(owner.public_key, 1) == [agreement]
        ledger = TrustChain(Identity.generate(), store)
        assert ledger.validate(second).reasons == ("double_countersign",)


def test_agreements_for_asks_sqlite_only_about_proposals_something_links_to() -> None:
    store = BlockStore(fsync=False)
    owner, signer = Identity.generate(), Identity.generate()
    store.insert_validated([sign(owner, link_public_key=signer.public_key)])
    queries: list[str] = []
    store._db.set_trace_callback(queries.append)
    assert store.agreements_for(owner.public_key, 1) == []
    assert queries == []  # nothing links to it: answered without a query
    agreement = sign(signer, link_public_key=owner.public_key, link_sequence_number=1)
    store.insert_validated([agreement])
    store._agreements = None  # forget the remembered answer: the next one must come from SQLite
    queries.clear()
    assert store.agreements_for(owner.public_key, 1) == [agreement]
    assert any(q.startswith("SELECT encoded FROM blocks WHERE link_public_key") for q in queries)


def test_what_lies_below_a_first_block_is_answered_without_a_query() -> None:
    store = BlockStore(fsync=False)
    owner = Identity.generate()
    first = sign(owner)
    store.insert_validated([first])
    store._recent.clear()  # not from the cache
    queries: list[str] = []
    store._db.set_trace_callback(queries.append)
    assert store.get(owner.public_key, 0) is None and store.get(owner.public_key, -1) is None
    assert store.held_sequence_numbers(owner.public_key, 1, 0) == []
    assert queries == []
    assert store.held_sequence_numbers(owner.public_key, 1, 1) == [1] and store.get(owner.public_key, 1) == first


def test_the_latest_sequence_number_is_kept_for_chains_untouched_by_the_open_batch() -> None:
    store = BlockStore(fsync=False)
    settled, busy = Identity.generate(), Identity.generate()
    store.insert_validated([sign(settled)])
    store._latest.clear()
    store.open_batch()
    store.insert_validated([sign(busy)])  # uncommitted
    assert store.latest_sequence_number(settled.public_key) == 1
    assert store._latest == {settled.public_key: 1}  # kept: no uncommitted row of that chain
    assert store.latest_sequence_number(busy.public_key) == 1
    assert busy.public_key not in store._latest  # never cache what a rollback could undo
    store._rollback()
    assert store.latest_sequence_number(busy.public_key) == 0


def test_a_store_that_never_waits_for_the_disk_never_syncs(tmp_path) -> None:
    lazy = BlockStore(tmp_path / "lazy.sqlite", fsync=False)
    TrustChain(Identity.generate(), lazy).record(PAY, {})
    assert lazy._db.execute("PRAGMA synchronous").fetchone()[0] == 0  # OFF: not even at checkpoints
    durable = BlockStore(tmp_path / "durable.sqlite")
    TrustChain(Identity.generate(), durable).record(PAY, {})
    assert durable._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL for our own block
    durable.insert_validated([sign(Identity.generate())])
    assert durable._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL for a received one


def test_a_store_in_memory_starts_as_a_new_file_store_does(tmp_path):
    # An in-memory store skips reading back what a new database cannot hold (light peers start
    # faster); it must still be the schema a new file gets, and independent of every other one.
    on_disk = BlockStore(tmp_path / "new.sqlite")
    first, second = BlockStore(":memory:"), BlockStore(":memory:", fsync=False)
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY name"
    for store in (first, second):
        assert store._db.execute(schema).fetchall() == on_disk._db.execute(schema).fetchall()
        assert store._db.execute("PRAGMA user_version").fetchone() == on_disk._db.execute("PRAGMA user_version").fetchone()
    ledger = TrustChain(Identity.generate(), first)
    ledger.record("test", {"n": 1})
    assert first.count() == 1 and second.count() == 0 and BlockStore(":memory:").count() == 0
    on_disk.close()


def _sqlite_temporary_files() -> list[str]:
    """SQLite's spilled statement journals that this process holds open (unlinked at once, so
    only /proc/self/fd still shows them)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since it was listed
            continue
        if "etilqs_" in target:
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_crawled_chains_in_a_batch_never_spill_a_journal_to_a_temporary_file(tmp_path):
    # A crawl received as one part of an open batch outgrew SQLite's 64 KiB in-memory statement
    # journal: a file created and deleted in /var/tmp, about 1.2 per trade in a 100-peer market
    # (each deletion slows the next creations on this file system: docs/performance.md).
    owners = [TrustChain(Identity.generate(), BlockStore(fsync=False)) for _ in range(60)]
    for owner in owners:
        for n in range(40):
            owner.record("edx.t", {"n": n})
    store = BlockStore(tmp_path / "crawler.sqlite", fsync=False)
    crawler = TrustChain(Identity.generate(), store)
    seen = []
    for first in (1, 21):
        store.open_batch()
        for owner in owners:
            with store.transaction(durable=False):
                assert not any(r.is_invalid for r in crawler.receive_many(owner.store.chain(owner.public_key, first, first + 19)))
            seen += _sqlite_temporary_files()
        store.commit_batch()
    assert store.count() == 60 * 40
    assert seen == []
