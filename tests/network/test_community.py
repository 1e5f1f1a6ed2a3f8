"""The TrustChain community between a few in-memory peers (pyipv8's TestBase, fragile handlers)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ipv8.keyvault.crypto import default_eccrypto
from ipv8.messaging.serialization import default_serializer
from ipv8.peer import Peer as IPv8Peer
from ipv8.test.base import TestBase
from ipv8.test.mocking.ipv8 import MockIPv8

from enerdatx.crypto import Identity
from enerdatx.errors import (
    ConfigurationError,
    FraudDetectedError,
    PeerUnreachableError,
    TransactionRejectedError,
    TransactionTimeoutError,
)
from enerdatx.overlay import AnswerBudget
from enerdatx.trustchain import BlockStore, FraudProof, HalfBlock, TrustChain
from enerdatx.trustchain.community import PendingCrawl, PendingProposal, TrustChainCommunity
from enerdatx.trustchain.keys import ipv8_private_key
from enerdatx.trustchain.payload import (
    SIGNED_OVERHEAD,
    AgreementMessage,
    BlockBroadcastMessage,
    CrawlRequestMessage,
    CrawlResponseMessage,
    ProposalMessage,
    RejectionMessage,
)
from enerdatx.trustchain.settings import TrustChainSettings
from tests.support.blocks import sign

PING = "test.ping"


def accept(_ledger: TrustChain, _proposal: HalfBlock) -> None:
    return None


class TrustChainTestBase(TestBase[TrustChainCommunity]):
    """Nodes whose IPv8 key is made from their TrustChain identity, each with its own ledger."""

    NODES = 2
    SETTINGS: dict[str, Any] = {"retry_interval": 0.05, "crawl_timeout": 1.0}

    def setUp(self) -> None:
        super().setUp()
        self.initialize(TrustChainCommunity, self.NODES)

    def create_node(self, *args: Any, **kwargs: Any) -> MockIPv8:
        identity = Identity.generate()
        ledger = TrustChain(identity, BlockStore(fsync=False))
        ledger.register_policy(PING, accept)
        settings = TrustChainSettings(ledger=ledger).update(**self.SETTINGS)
        return MockIPv8(IPv8Peer(ipv8_private_key(identity)), TrustChainCommunity, settings)

    def ledger(self, i: int) -> TrustChain:
        return self.overlay(i).ledger

    def key(self, i: int) -> bytes:
        return self.ledger(i).public_key

    def watch_sent(self, i: int, message: type, *, lose_first: bool = False) -> list[bytes]:
        """The packets of ``message`` that node ``i`` sends from now on; all go out unless
        ``lose_first``, when the first one is lost."""
        endpoint = self.endpoint(i)
        send = endpoint.send
        sent: list[bytes] = []

        def watched(address: Any, packet: bytes) -> None:
            if packet[22] == message.msg_id:
                sent.append(packet)
                if lose_first and len(sent) == 1:
                    return
            send(address, packet)

        endpoint.send = watched
        return sent

    def drop_first(self, i: int, message: type) -> list[bytes]:
        """Make node ``i`` lose the first packet it sends of ``message``; returns what it sent."""
        return self.watch_sent(i, message, lose_first=True)


class TestKeys(TrustChainTestBase):
    def test_ipv8_key_is_the_trustchain_identity(self) -> None:
        key_bin = self.my_peer(0).public_key.key_to_bin()
        self.assertEqual(key_bin[-32:], self.key(0))
        self.assertEqual(self.overlay(0).peer_for(self.key(1)).public_key.key_to_bin()[-32:], self.key(1))

    def test_unknown_peer_has_no_ipv8_peer(self) -> None:
        self.assertIsNone(self.overlay(0).peer_for(Identity.generate().public_key))


class TestSigning(TrustChainTestBase):
    async def test_proposal_gets_agreement_stored_on_both_sides(self) -> None:
        proposal, agreement = await self.overlay(0).propose(self.key(1), PING, {"n": 1}, timeout=2)
        self.assertEqual((agreement.public_key, agreement.link_sequence_number), (self.key(1), 1))
        self.assertEqual(self.ledger(1).store.linked(proposal), agreement)
        self.assertEqual(self.ledger(0).store.linked(proposal), agreement)
        self.assertEqual(self.overlay(0).pending(PendingProposal), [])

    async def test_refused_type_raises_rejected(self) -> None:
        with self.assertRaises(TransactionRejectedError) as caught:
            await self.overlay(0).propose(self.key(1), "test.unwanted", {}, timeout=2)
        self.assertIn("no policy", caught.exception.reason)
        self.assertEqual(self.ledger(1).store.latest_sequence_number(self.key(1)), 0)

    async def test_lost_proposal_is_sent_again(self) -> None:
        sent = self.drop_first(0, ProposalMessage)
        await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        self.assertGreaterEqual(len(sent), 2)

    async def test_lost_agreement_is_sent_again_not_signed_twice(self) -> None:
        sent = self.drop_first(1, AgreementMessage)
        _, agreement = await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        self.assertEqual(len(sent), 2)
        self.assertTrue(all(agreement.encode() in packet for packet in sent))
        self.assertEqual(self.ledger(1).store.latest_sequence_number(self.key(1)), 1)

    async def test_silent_counterparty_times_out_cleanly(self) -> None:
        self.endpoint(1).close()
        with self.assertRaises(TransactionTimeoutError):
            await self.overlay(0).propose(self.key(1), PING, {}, timeout=0.3)
        self.assertEqual(self.overlay(0).pending(PendingProposal), [])
        self.assertEqual(self.ledger(0).store.latest_sequence_number(self.key(0)), 1)  # the proposal stays

    async def test_countersigner_first_crawls_what_it_misses(self) -> None:
        for n in range(3):
            self.ledger(0).record("test.note", {"n": n})
        await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        self.assertEqual([b.sequence_number for b in self.ledger(1).store.chain(self.key(0))], [1, 2, 3, 4])


class TestProposalHistory(TrustChainTestBase):
    """A proposal brings the blocks of its chain below it that the counterparty may lack."""

    async def test_the_chain_below_comes_with_the_proposal_and_nothing_is_crawled(self) -> None:
        for n in range(3):
            self.ledger(0).record("test.note", {"n": n})
        crawls = self.watch_sent(1, CrawlRequestMessage)
        await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        self.assertEqual([b.sequence_number for b in self.ledger(1).store.chain(self.key(0))], [1, 2, 3, 4])
        self.assertEqual(crawls, [])

    async def test_a_chain_longer_than_a_page_brings_its_newest_page_and_the_rest_is_crawled(self) -> None:
        self.overlay(0).settings.crawl_page_size = self.overlay(1).settings.crawl_page_size = 4
        for n in range(10):
            self.ledger(0).record("test.note", {"n": n})
        crawled: list[tuple[int, int | None]] = []
        crawl = self.overlay(1).crawl

        async def recording(public_key: bytes, start: int = 1, end: int | None = None, **kwargs: Any) -> Any:
            crawled.append((start, end))
            return await crawl(public_key, start, end, **kwargs)

        self.overlay(1).crawl = recording  # type: ignore[method-assign]
        await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        self.assertEqual(crawled, [(1, 6)])  # 7 to 10 came with the proposal
        self.assertEqual(len(self.ledger(1).store.chain(self.key(0))), 11)

    async def test_a_counterparty_that_countersigned_is_not_sent_that_history_again(self) -> None:
        for n in range(3):
            self.ledger(0).record("test.note", {"n": n})
        sent = self.watch_sent(0, ProposalMessage)
        await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        second, _ = await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        alone = SIGNED_OVERHEAD + len(default_serializer.pack_serializable(ProposalMessage(second.encode(), [])))
        self.assertEqual(len(sent[-1]), alone)
        self.assertGreater(len(sent[0]), alone + 3 * 100)  # the first carried blocks 1 to 3

    async def test_history_blocks_that_are_not_the_proposers_chain_below_are_dropped(self) -> None:
        good = self.ledger(0).record("test.note", {"n": 1})
        stranger = TrustChain(Identity.generate(), BlockStore(fsync=False)).record("test.note", {})
        forged = dataclasses.replace(self.ledger(0).record("test.note", {"n": 2}), signature=bytes(64))
        history = [stranger.encode(), forged.encode(), b"not a block"]
        self.overlay(0)._history_for = lambda *_: history  # type: ignore[method-assign]
        crawls = self.watch_sent(1, CrawlRequestMessage)
        await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        self.assertIsNone(self.ledger(1).store.get_by_hash(stranger.hash))
        self.assertEqual(self.ledger(1).store.chain(self.key(0))[0], good)  # crawled instead
        self.assertEqual(len(crawls), 1)

    async def test_a_history_block_that_forks_a_held_one_proves_fraud(self) -> None:
        twin = TrustChain(self.ledger(0).identity, BlockStore(fsync=False))
        self.ledger(1).receive(twin.record("test.note", {"version": 2}))  # node 0's other chain
        self.ledger(0).record("test.note", {"version": 1})
        with self.assertRaises(TransactionRejectedError) as caught:
            await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        self.assertEqual(caught.exception.reason, "fraud")
        self.assertTrue(self.ledger(1).store.is_fraudulent(self.key(0)))

    async def test_two_history_blocks_at_one_place_prove_fraud(self) -> None:
        # Keyed by sequence number, the second silently replaced the first: the fork was lost.
        twin = TrustChain(self.ledger(0).identity, BlockStore(fsync=False))
        other = twin.record("test.note", {"version": 2})
        real = self.ledger(0).record("test.note", {"version": 1})
        self.overlay(0)._history_for = lambda *_: [other.encode(), real.encode()]  # type: ignore[method-assign]
        with self.assertRaises(TransactionRejectedError) as caught:
            await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        self.assertEqual(caught.exception.reason, "fraud")
        self.assertTrue(self.ledger(1).store.is_fraudulent(self.key(0)))


class TestCrawl(TrustChainTestBase):
    async def test_crawl_returns_and_stores_the_chain(self) -> None:
        records = [self.ledger(0).record("test.note", {"n": n}) for n in range(5)]
        blocks = await self.overlay(1).crawl(self.key(0), 2)
        self.assertEqual(blocks, records[1:])
        self.assertEqual(self.ledger(1).store.chain(self.key(0)), records[1:])

    async def test_crawl_over_several_pages(self) -> None:
        self.overlay(0).settings.crawl_page_size = self.overlay(1).settings.crawl_page_size = 4
        records = [self.ledger(0).record("test.note", {"n": n}) for n in range(10)]
        self.assertEqual(await self.overlay(1).crawl(self.key(0)), records)
        self.assertEqual(await self.overlay(1).crawl(self.key(0), 3, 6), records[2:6])

    async def test_a_page_of_more_blocks_than_a_list_holds_comes_in_several_packets(self) -> None:
        # A block list counts its items in one byte: 300 small blocks fit one packet's bytes, not its count.
        self.overlay(0).settings.crawl_page_size = self.overlay(1).settings.crawl_page_size = 300
        records = [self.ledger(0).record("test.note", {}) for _ in range(300)]
        self.assertEqual(await self.overlay(1).crawl(self.key(0)), records)

    async def test_crawl_keeps_only_blocks_that_match_and_validate(self) -> None:
        good = self.ledger(0).record("test.note", {"n": 1})
        stranger = TrustChain(Identity.generate(), BlockStore(fsync=False)).record("test.note", {})
        forged = dataclasses.replace(good, signature=bytes(64))
        self.overlay(0).decode_map[CrawlRequestMessage.msg_id] = lambda *_: None  # node 0 answers by hand
        crawl = asyncio.ensure_future(self.overlay(1).crawl(self.key(0), 1, 1))
        await asyncio.sleep(0)
        (pending,) = self.overlay(1).pending(PendingCrawl)
        identifier = pending.number
        answer = [block.encode() for block in (stranger, forged, good)]
        self.overlay(0).send(self.peer(1), CrawlResponseMessage(identifier, 1, answer))
        self.assertEqual(await crawl, [good])
        self.assertIsNone(self.ledger(1).store.get_by_hash(stranger.hash))

    async def test_a_crawled_block_that_forks_a_held_one_proves_fraud(self) -> None:
        held = self.ledger(0).record("test.note", {"version": 1})
        self.ledger(1).receive(held)
        twin = TrustChain(self.ledger(0).identity, BlockStore(fsync=False))
        twin.record("test.note", {"version": 2})  # node 0 now answers crawls from another chain
        self.overlay(0).ledger = twin
        self.assertEqual(await self.overlay(1).crawl(self.key(0)), [])
        self.assertTrue(self.ledger(1).store.is_fraudulent(self.key(0)))

    async def test_two_crawled_blocks_at_one_place_prove_fraud(self) -> None:
        # Keyed by sequence number, the second replaced the first: the fork was never proven.
        twin = TrustChain(self.ledger(0).identity, BlockStore(fsync=False))
        other = twin.record("test.note", {"version": 2})
        real = self.ledger(0).record("test.note", {"version": 1})
        self.overlay(0).decode_map[CrawlRequestMessage.msg_id] = lambda *_: None  # node 0 answers by hand
        crawl = asyncio.ensure_future(self.overlay(1).crawl(self.key(0), 1, 1))
        await asyncio.sleep(0)
        (pending,) = self.overlay(1).pending(PendingCrawl)
        self.overlay(0).send(self.peer(1), CrawlResponseMessage(pending.number, 2, [other.encode(), real.encode()]))
        await crawl
        self.assertTrue(self.ledger(1).store.is_fraudulent(self.key(0)))

    async def test_crawl_of_a_silent_peer_raises_unreachable(self) -> None:
        self.endpoint(0).close()
        with self.assertRaises(PeerUnreachableError):
            await self.overlay(1).crawl(self.key(0))


class TestLimits(TrustChainTestBase):
    SETTINGS = {**TrustChainTestBase.SETTINGS, "rate_per_second": 0.001, "rate_burst": 5, "max_packet_size": 2048}

    def setUp(self) -> None:
        self.production_overlay_classes = [TrustChainCommunity]  # keep our on_packet, where the limits are
        super().setUp()

    async def test_oversized_packets_are_dropped_unread(self) -> None:
        big = self.overlay(0).ezr_pack(ProposalMessage.msg_id, ProposalMessage(bytes(4096), []))
        self.endpoint(0).send(self.address(1), big)
        await self.deliver_messages()
        self.assertEqual(self.overlay(1).packets_dropped, 1)

    async def test_a_sender_beyond_its_rate_is_dropped(self) -> None:
        self.ledger(0).record("test.note", {})
        request = CrawlRequestMessage(7, self.key(0), 1, 0)
        for _ in range(20):
            self.overlay(1).send(self.peer(0), request)
        await self.deliver_messages()
        self.assertEqual(self.overlay(0).packets_dropped, 15)
        self.assertEqual(self.overlay(0).packets_sent, 5)


class TestCrawlAnswerBudget(TrustChainTestBase):
    """A crawl request's address can be forged: what one address gets back is bounded."""

    SETTINGS = {**TrustChainTestBase.SETTINGS, "crawl_answer_rate": 0.0, "crawl_answer_burst": 20_000}

    async def test_many_crawl_requests_from_one_address_get_bounded_bytes_back(self) -> None:
        # Each 215-byte request bought a page of 64 blocks (~12 KB here) for its address, however many came.
        for n in range(64):
            self.ledger(0).record("test.note", {"n": n})
        answers = self.watch_sent(0, CrawlResponseMessage)
        for identifier in range(50):
            self.overlay(1).send(self.peer(0), CrawlRequestMessage(identifier, self.key(0), 1, 0))
        await self.deliver_messages()
        answer = max(map(len, answers))
        self.assertGreater(answer, 10_000)
        self.assertLessEqual(sum(map(len, answers)), 20_000 + answer)  # the burst, and the answer that spent it
        self.assertEqual(self.overlay(0).drops["crawl_budget"], 50 - len(answers))

    async def test_a_crawl_beyond_the_burst_is_answered_as_the_budget_refills(self) -> None:
        self.overlay(0).crawl_answers = AnswerBudget(rate=100_000.0, burst=2_000)  # less than a page
        self.overlay(0).settings.crawl_page_size = self.overlay(1).settings.crawl_page_size = 8
        records = [self.ledger(0).record("test.note", {"n": n}) for n in range(40)]
        self.assertEqual(await self.overlay(1).crawl(self.key(0)), records)
        self.assertGreater(self.overlay(0).drops["crawl_budget"], 0)  # some pages were asked for again

    def test_a_burst_of_no_bytes_is_refused(self) -> None:
        with self.assertRaises(ConfigurationError):
            TrustChainSettings().update(crawl_answer_burst=0)


class TestContacts(TrustChainTestBase):
    def send_with_made_up_keys(self, count: int) -> None:
        """``count`` crawl requests from peer 0's address to peer 1, each signed with a new key."""
        sender = self.overlay(0)
        real_peer, real_secret = sender.my_peer, sender._ed25519_secret
        sender._ed25519_secret = None  # pyipv8's own signing, with the key of my_peer
        try:
            for _ in range(count):
                sender.my_peer = IPv8Peer(default_eccrypto.generate_key("curve25519"))
                self.endpoint(0).send(self.address(1), sender.ezr_pack(
                    CrawlRequestMessage.msg_id, CrawlRequestMessage(1, self.key(1), 1, 0)))
        finally:
            sender.my_peer, sender._ed25519_secret = real_peer, real_secret

    async def test_a_sender_with_a_new_key_per_packet_is_one_contact(self) -> None:
        # Each made-up key was kept: contacts without bound, and gossip and witnesses chosen among them.
        self.send_with_made_up_keys(50)
        await self.deliver_messages()
        self.assertEqual(len(self.overlay(1).contacts), 1)
        await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        self.assertEqual(self.overlay(1).contacts, {self.key(0): self.address(0)})

    async def test_made_up_keys_from_a_given_contacts_address_leave_it_in_place(self) -> None:
        # A packet's source address can be forged: a made-up key "from" the address of a peer we
        # were given evicted it, and every later send to it failed with PeerUnreachableError.
        receiver = self.overlay(1)
        receiver.add_contact(self.key(0), self.address(0), given=True)
        self.send_with_made_up_keys(5)
        await self.deliver_messages()
        self.assertEqual(receiver.contacts[self.key(0)], self.address(0))
        self.assertEqual(len(receiver.contacts), 2)  # the given peer and the last made-up key: still bounded


class TestMalformedPackets(TrustChainTestBase):
    """Packets of a hostile peer that do not unpack: dropped and counted, no traceback logged."""

    def setUp(self) -> None:
        self.production_overlay_classes = [TrustChainCommunity]  # pyipv8's on_packet, which logged them
        super().setUp()

    async def test_packets_that_do_not_unpack_are_dropped_as_malformed(self) -> None:
        sender = self.overlay(0)
        prefix = sender.get_prefix()
        block = self.ledger(0).record("test.note", {}).encode()
        proposal = sender.ezr_pack(ProposalMessage.msg_id, ProposalMessage(block, []))
        packets = [
            proposal[:-70],  # cut inside the signature
            proposal[:-1] + bytes([proposal[-1] ^ 1]),  # a bad signature
            sender.ezr_pack(RejectionMessage.msg_id, RejectionMessage(1, "x"))[:-70],
            prefix,  # no message id: an IndexError in pyipv8's on_packet
            prefix + bytes([CrawlResponseMessage.msg_id, 0]),
            prefix + bytes([AgreementMessage.msg_id]) + b"\xff",
            prefix + bytes([BlockBroadcastMessage.msg_id]),
        ]
        with self.assertNoLogs(level="WARNING"):
            for packet in packets:
                self.endpoint(0).send(self.address(1), packet)
            await self.overlay(1).wait_for_drops(len(packets), "malformed", timeout=2)
            await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)  # an honest one still goes through


class TestGossipAndFraud(TrustChainTestBase):
    NODES = 4

    def fraud_futures(self, nodes: range) -> list[asyncio.Future[None]]:
        futures = []
        for i in nodes:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.ledger(i).on_fraud(lambda proof, f=future: f.done() or f.set_result(None))
            futures.append(future)
        return futures

    async def test_new_blocks_reach_peers_outside_the_transaction(self) -> None:
        held: set[bytes] = set()
        changed = asyncio.Event()

        def on_block(block: HalfBlock) -> None:
            held.add(block.hash)
            changed.set()

        self.ledger(3).subscribe(on_block)
        proposal, agreement = await self.overlay(0).propose(self.key(1), PING, {}, timeout=2)
        async with asyncio.timeout(2):
            while not {proposal.hash, agreement.hash} <= held:
                changed.clear()
                await changed.wait()

    async def test_forker_is_found_and_refused_by_every_honest_peer(self) -> None:
        found = self.fraud_futures(range(1, 4))
        twin = TrustChain(self.ledger(0).identity, BlockStore(fsync=False))
        first = self.ledger(0).propose(self.key(1), PING, {"to": 1})
        second = twin.propose(self.key(2), PING, {"to": 2})
        self.assertEqual(first.sequence_number, second.sequence_number)
        self.overlay(0).send(self.peer(1), ProposalMessage(first.encode(), []))
        self.overlay(0).send(self.peer(2), ProposalMessage(second.encode(), []))
        await asyncio.wait_for(asyncio.gather(*found), 3)
        for i in range(1, 4):
            self.assertTrue(self.ledger(i).store.is_fraudulent(self.key(0)))
            with self.assertRaises(FraudDetectedError):
                await self.overlay(i).propose(self.key(0), PING, {}, timeout=1)
        with self.assertRaises(TransactionRejectedError) as caught:
            await self.overlay(0).propose(self.key(3), PING, {}, timeout=1)
        self.assertEqual(caught.exception.reason, "fraud")

    async def test_waiting_proposal_to_a_forker_fails_when_the_proof_arrives(self) -> None:
        self.endpoint(0).close()  # the forker never answers
        waiting = asyncio.ensure_future(self.overlay(1).propose(self.key(0), PING, {}, timeout=5))
        await asyncio.sleep(0)
        forker = self.ledger(0).identity
        proof = FraudProof.of(sign(forker, transaction={"a": 1}), sign(forker, transaction={"a": 2}))
        self.ledger(2).receive_fraud_proof(proof)  # node 2 learns it and spreads it
        with self.assertRaises(FraudDetectedError):
            await waiting
