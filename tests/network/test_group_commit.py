"""Group commit: concurrent proposals of one peer share one commit, and none is sent before it."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from ipv8.peer import Peer as IPv8Peer
from ipv8.test.mocking.ipv8 import MockIPv8

from enerdatx.crypto import Identity
from enerdatx.errors import LedgerError, StorageError
from enerdatx.trustchain import BlockStore, HalfBlock, TrustChain
from enerdatx.trustchain.community import TrustChainCommunity
from enerdatx.trustchain.keys import ipv8_private_key
from enerdatx.trustchain.payload import AgreementMessage, BlockBroadcastMessage, ProposalMessage
from enerdatx.trustchain.settings import TrustChainSettings
from tests.network.test_community import PING, TrustChainTestBase, accept


class CountingConnection:
    """A sqlite3 connection that counts COMMITs and can be told to fail the next one."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.commits = 0
        self.fail_next_commit = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            if self.fail_next_commit:
                self.fail_next_commit = False
                raise sqlite3.OperationalError("disk I/O error (simulated)")
            self.commits += 1
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


class CountingStores(TrustChainTestBase):
    """Nodes whose stores are files (own blocks fsync'ed) behind a CountingConnection."""

    NODES = 3

    def setUp(self) -> None:
        self.directory = tempfile.TemporaryDirectory()
        super().setUp()

    async def tearDown(self) -> None:
        await super().tearDown()
        self.directory.cleanup()

    def create_node(self, *args: Any, **kwargs: Any) -> MockIPv8:
        identity = Identity.generate()
        path = Path(self.directory.name, f"{identity.public_key.hex()[:8]}.sqlite")
        store = BlockStore(path, fsync=True)  # the default: own blocks wait for the disk
        store._db = CountingConnection(store._db)  # type: ignore[assignment]
        ledger = TrustChain(identity, store)
        ledger.register_policy(PING, accept)
        settings = TrustChainSettings(ledger=ledger).update(**self.SETTINGS)
        return MockIPv8(IPv8Peer(ipv8_private_key(identity)), TrustChainCommunity, settings)

    def watch_sends(self, i: int) -> list[tuple[int, bool]]:
        """(message id, whether the own block it carries is committed, seen from another connection)."""
        community, store = self.overlay(i), self.ledger(i).store
        send = community.send
        seen: list[tuple[int, bool]] = []

        def watching(peer: Any, payload: Any) -> None:
            if isinstance(payload, (ProposalMessage, AgreementMessage, BlockBroadcastMessage)):
                block = HalfBlock.decode(payload.block)
                if block.public_key == self.key(i):
                    with sqlite3.connect(store.path) as other:
                        held = other.execute("SELECT 1 FROM blocks WHERE block_hash = ?", (block.hash,)).fetchone()
                    seen.append((payload.msg_id, held is not None))
            send(peer, payload)

        community.send = watching  # type: ignore[method-assign]
        return seen


class TestGroupCommit(CountingStores):
    async def test_concurrent_proposals_share_one_commit_and_are_committed_before_they_are_sent(self) -> None:
        proposer = self.ledger(0).store._db
        sent = self.watch_sends(0)
        before = proposer.commits
        pairs = await asyncio.gather(*(self.overlay(0).propose(self.key(1 + n % 2), PING, {"n": n}) for n in range(6)))
        assert [p.sequence_number for p, _ in pairs] == [1, 2, 3, 4, 5, 6]
        proposals = [(m, ok) for m, ok in sent if m == ProposalMessage.msg_id]
        assert len(proposals) >= 6 and all(ok for _, ok in proposals), sent
        # The six proposals were signed in one turn of the loop: one commit between them. The
        # agreements that came back are stored (non-durably) in commits of their own.
        proposal_commits = proposer.commits - before - 6
        assert proposal_commits <= 1, proposer.commits - before
        for proposal, agreement in pairs:
            assert self.ledger(0).store.linked(proposal) == agreement

    async def test_agreements_are_committed_before_they_are_sent(self) -> None:
        sent = self.watch_sends(1)
        await asyncio.gather(*(self.overlay(0).propose(self.key(1), PING, {"n": n}) for n in range(4)))
        agreements = [ok for m, ok in sent if m == AgreementMessage.msg_id]
        assert len(agreements) >= 4 and all(agreements), sent

    async def test_a_failed_group_commit_sends_nothing_and_the_chain_goes_on(self) -> None:
        proposer = self.ledger(0)
        sent = self.watch_sends(0)
        proposer.store._db.fail_next_commit = True
        results = await asyncio.gather(
            *(self.overlay(0).propose(self.key(1), PING, {"n": n}, timeout=1) for n in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, LedgerError) for r in results), results
        assert [m for m, _ in sent if m == ProposalMessage.msg_id] == []
        assert proposer.store.count() == 0 and proposer.head is None
        proposal, agreement = await self.overlay(0).propose(self.key(1), PING, {"n": 9})
        assert proposal.sequence_number == 1 and self.ledger(1).store.linked(proposal) is not None
        assert agreement.link_sequence_number == 1


class TestGossipCommit(CountingStores):
    """Gossip waits in the open transaction up to received_commit_delay; listeners hear of it at once."""

    NODES = 4
    SETTINGS = {**CountingStores.SETTINGS, "received_commit_delay": 0.4, "witnesses": 3, "gossip_fanout": 3}

    def committed(self, i: int, block: HalfBlock) -> bool:
        with sqlite3.connect(self.ledger(i).store.path) as other:
            return other.execute("SELECT 1 FROM blocks WHERE block_hash = ?", (block.hash,)).fetchone() is not None

    async def gossip_waiting_at(self, i: int) -> HalfBlock:
        """A transaction between nodes 0 and 1 whose proposal node ``i`` holds, uncommitted."""
        proposal, _ = await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        async with asyncio.timeout(2):
            while self.ledger(i).store.get(proposal.public_key, 1) is None:
                await asyncio.sleep(0.01)
        assert not self.committed(i, proposal)
        return proposal

    async def test_gossip_is_heard_at_once_and_committed_within_the_delay(self) -> None:
        heard: list[HalfBlock] = []
        self.ledger(3).subscribe(heard.append)
        commits = self.ledger(3).store._db.commits
        loop = asyncio.get_running_loop()
        start = loop.time()
        proposal, agreement = await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        async with asyncio.timeout(2):
            while not {proposal.hash, agreement.hash} <= {b.hash for b in heard}:
                await asyncio.sleep(0.01)
        assert loop.time() - start < 0.3  # heard long before the delay is up
        assert self.ledger(3).store.uncommitted_blocks == 2 and not self.committed(3, proposal)
        async with asyncio.timeout(2):
            while not self.committed(3, agreement):
                await asyncio.sleep(0.02)
        assert self.committed(3, proposal) and self.ledger(3).store.uncommitted_blocks == 0
        assert self.ledger(3).store._db.commits == commits + 1  # both blocks, one commit

    async def test_our_own_block_commits_the_waiting_gossip_before_it_is_sent(self) -> None:
        proposal = await self.gossip_waiting_at(3)
        sent = self.watch_sends(3)
        await self.overlay(3).propose(self.key(2), PING, {}, timeout=2)
        assert self.committed(3, proposal)  # committed with (before) our proposal
        assert all(ok for _, ok in sent), sent

    async def test_unloading_commits_the_waiting_gossip(self) -> None:
        proposal = await self.gossip_waiting_at(3)
        await self.overlay(3).unload()
        assert self.committed(3, proposal)

    async def test_a_full_batch_is_committed_at_once(self) -> None:
        self.overlay(3).settings.received_commit_blocks = 2
        proposal, agreement = await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        async with asyncio.timeout(0.3):
            while not self.committed(3, agreement):
                await asyncio.sleep(0.01)
        assert self.committed(3, proposal)


def test_a_durable_write_commits_an_open_batch_first_and_a_failed_part_undoes_only_itself(tmp_path) -> None:
    owner = Identity.generate()
    ledger = TrustChain(Identity.generate(), BlockStore(tmp_path / "s.sqlite"))
    stored: list[HalfBlock] = []
    ledger.subscribe(stored.append)
    from tests.support.blocks import sign

    first = sign(owner)
    ledger.store.open_batch()
    assert not ledger.receive(first).is_invalid
    assert stored == [first]  # a block of others is heard of once stored, not at the batch's commit
    try:
        with ledger.store.transaction(durable=False):
            ledger.store.insert_validated([sign(owner, sequence_number=2, previous_hash=first.hash)])
            raise RuntimeError("fails half-way")
    except RuntimeError:
        pass
    assert ledger.store.get(owner.public_key, 2) is None and ledger.store.get(owner.public_key, 1) == first
    record = ledger.record(PING, {"n": 1})  # durable: commits the batch, then itself
    assert ledger.store.batch is None
    with sqlite3.connect(tmp_path / "s.sqlite") as other:
        assert other.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 2
    assert stored == [first, record]  # never the undone block


@pytest.mark.parametrize("fsync", [True, False])
def test_listeners_hear_of_our_own_group_committed_blocks_only_after_the_commit(tmp_path, fsync) -> None:
    """Even without fsync, and even when our block joins an open batch of gossip: a failed commit
    would take it back and the next block would reuse its place."""
    from tests.support.blocks import sign

    ledger = TrustChain(Identity.generate(), BlockStore(tmp_path / "s.sqlite", fsync=fsync))
    stored: list[HalfBlock] = []
    ledger.subscribe(stored.append)
    other = Identity.generate()
    gossip = sign(other)
    ledger.store.open_batch()
    ledger.receive(gossip)
    assert stored == [gossip]
    ours = ledger.propose(other.public_key, PING, {"n": 1}, group_commit=True)
    later_gossip = sign(other, sequence_number=2, previous_hash=gossip.hash)
    ledger.receive(later_gossip)
    assert ours not in stored and later_gossip not in stored  # the batch holds our block now
    ledger.commit()
    assert stored == [gossip, ours, later_gossip] or stored == [gossip, later_gossip, ours]


def test_a_failed_first_part_of_a_batch_undoes_the_batch_and_the_store_goes_on(tmp_path) -> None:
    from tests.support.blocks import sign

    store = BlockStore(tmp_path / "s.sqlite")
    owner = Identity.generate()
    store.open_batch()
    serial = store.batch
    try:
        with store.transaction(durable=False):
            store.insert_validated([sign(owner)])
            raise RuntimeError("fails half-way")
    except RuntimeError:
        pass
    assert store.batch is None and not store.batch_committed(serial)
    assert store.count() == 0 and store.get(owner.public_key, 1) is None
    block = sign(owner)
    store.open_batch()
    with store.transaction(durable=False):
        store.insert_validated([block])
    store.commit_batch()
    assert store.batch_committed(serial + 1) and store.get(owner.public_key, 1) == block


def test_a_durable_write_that_fails_to_commit_the_open_group_does_not_sign_above_the_lost_blocks(tmp_path) -> None:
    store = BlockStore(tmp_path / "s.sqlite")
    store._db = CountingConnection(store._db)  # type: ignore[assignment]
    ledger = TrustChain(Identity.generate(), store)
    counterparty = Identity.generate().public_key
    kept = ledger.record(PING, {"n": 0})
    lost = ledger.propose(counterparty, PING, {"n": 1}, group_commit=True)
    assert ledger.head == lost
    store._db.fail_next_commit = True
    try:
        ledger.record(PING, {"n": 2})  # commits the group first: that commit fails
    except StorageError:  # the disk's failure, typed
        pass
    assert ledger.head == kept and store.get(lost.public_key, 2) is None
    assert ledger.record(PING, {"n": 3}).sequence_number == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"received_commit_delay": float("nan")},
        {"received_commit_delay": -1},
        {"received_commit_delay": float("inf")},
        {"received_commit_delay": True},
        {"received_commit_delay": "0.5"},
        {"received_commit_blocks": 0},
        {"received_commit_blocks": 2.5},
    ],
)
def test_commit_settings_out_of_range_are_refused(overrides) -> None:
    # Refused by the settings themselves when a value is not of the field's kind (NaN, "0.5",
    # 2.5), else by the community (a commit after 0 blocks).
    identity = Identity.generate()
    with pytest.raises(ValueError, match=next(iter(overrides))):
        settings = TrustChainSettings(ledger=TrustChain(identity, BlockStore(fsync=False))).update(**overrides)
        MockIPv8(IPv8Peer(ipv8_private_key(identity)), TrustChainCommunity, settings)
