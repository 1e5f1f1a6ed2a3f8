"""The TrustChain community on IPv8: signing, crawling, gossip and fraud proofs.

The community only moves bytes; every decision about a block (valid, stored, a fork,
acceptable to countersign) is the ledger's (:class:`enerdatx.trustchain.TrustChain`).
One Ed25519 identity names a peer on both layers: its IPv8 key is the curve25519
("LibNaCL") key made from the same seed, so the last 32 bytes of a peer's IPv8 public
key are its TrustChain public key. docs/network.md describes the messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ipv8.lazy_community import lazy_wrapper, lazy_wrapper_unsigned
from ipv8.peer import Peer as IPv8Peer

from enerdatx.errors import (
    EncodingError,
    FraudDetectedError,
    InvalidBlockError,
    LedgerError,
    PeerUnreachableError,
    TransactionRejectedError,
    TransactionTimeoutError,
)
from enerdatx.overlay import AnswerBudget, Overlay
from enerdatx.trustchain.block import HalfBlock
from enerdatx.trustchain.commits import GroupCommit
from enerdatx.trustchain.encoding import MAX_SEQUENCE_NUMBER
from enerdatx.trustchain.fraud import FraudProof
from enerdatx.trustchain.gossip import FraudRumours, witnesses
from enerdatx.trustchain.keys import ipv8_public_key_bin, trustchain_key
from enerdatx.trustchain.payload import (
    MAX_LISTED_BLOCKS,
    UNSIGNED,
    AgreementMessage,
    BlockBroadcastMessage,
    CrawlRequestMessage,
    CrawlResponseMessage,
    FraudProofMessage,
    ProposalMessage,
    RejectionMessage,
    pack_blocks,
)
from enerdatx.trustchain.pending import PendingCrawl, PendingProposal
from enerdatx.trustchain.settings import TrustChainSettings

if TYPE_CHECKING:
    from ipv8.messaging.interfaces.udp.endpoint import Address
    from ipv8.messaging.serialization import Payload

    from enerdatx.trustchain.ledger import TrustChain

__all__ = ["PendingCrawl", "PendingProposal", "TrustChainCommunity"]  # the pending requests, for tests

logger = logging.getLogger(__name__)

# Sent in a RejectionMessage when the receiver holds a fraud proof against the proposer.
FRAUD_REASON = "fraud"


class TrustChainCommunity(Overlay):
    """Exchanges one ledger's half-blocks with other peers over IPv8."""

    community_id = bytes.fromhex("65646e5852b8a1c63f0e2d9d7c1a4e58a6f3b201")
    settings_class = TrustChainSettings

    def __init__(self, settings: TrustChainSettings) -> None:
        if settings.ledger is None:
            raise ValueError("TrustChainCommunity needs settings.ledger")
        for name in ("received_commit_delay", "received_commit_blocks", "crawl_page_size", "crawl_answer_burst"):
            settings.check(name, getattr(settings, name))  # fields may be set without update()
        super().__init__(settings)
        self.settings = settings
        self.ledger: TrustChain = settings.ledger
        self.public_key: bytes = self.ledger.public_key
        self.contacts: dict[bytes, Address] = {}
        self._keys_by_address: dict[Address, bytes] = {}  # the key learnt last at each address
        self._given_contacts: set[bytes] = set()
        self._key_bins: dict[bytes, bytes] = {}
        self.seeds: list[Address] = []
        self._peers: dict[bytes, IPv8Peer] = {}
        self._countersigning: set[bytes] = set()
        # Per counterparty, the highest sequence number of our chain it countersigned a
        # proposal at: it held our chain up to there (it crawls what it lacks first).
        self._held_by: dict[bytes, int] = {}
        self.rumours = FraudRumours(settings, self._push_proof)
        self.commits = GroupCommit(self.ledger)
        self.crawl_answers = AnswerBudget(settings.crawl_answer_rate, settings.crawl_answer_burst)

        self.add_message_handler(ProposalMessage, self.on_proposal)
        self.add_message_handler(AgreementMessage, self.on_agreement)
        self.add_message_handler(RejectionMessage, self.on_rejection)
        self.add_message_handler(CrawlRequestMessage, self.on_crawl_request)
        self.add_message_handler(CrawlResponseMessage, self.on_crawl_response)
        self.add_message_handler(BlockBroadcastMessage, self.on_block_broadcast)
        self.add_message_handler(FraudProofMessage, self.on_fraud_proof)
        self.ledger.on_fraud(self._spread_fraud)
        self.register_task("fraud-rounds", self.rumours.round, interval=settings.fraud_round_interval)
        self.register_task("seeds", self._walk_to_seeds, interval=settings.seed_interval, delay=0)

    async def unload(self) -> None:
        """Commit the gossip that waits for its commit, then stop."""
        try:
            self.commits.flush()
        finally:
            await super().unload()

    # --- peers ---------------------------------------------------------------------

    def add_contact(self, public_key: bytes, address: Address, *, given: bool = False) -> None:
        """Remember where the peer with TrustChain key ``public_key`` listens.

        ``given``: the contact was given to us (``Peer.add_contacts``), not learnt from a packet.
        """
        if public_key == self.public_key:
            return
        if given:
            self._given_contacts.add(public_key)
        if self.contacts.get(public_key) != address:
            # One address is one learnt peer: the key learnt there before is forgotten. A sender
            # that signed each packet with a new key grew the contacts without bound, and every
            # made-up key was a candidate for gossip and for a block's witnesses. A given contact
            # stays: a packet's source address can be forged, and a made-up key signing "from"
            # a known peer's address made that peer unreachable.
            previous = self._keys_by_address.get(address)
            if (previous is not None and previous != public_key and previous not in self._given_contacts
                    and self.contacts.get(previous) == address):
                del self.contacts[previous]
                self._peers.pop(previous, None)
            self.contacts[public_key] = address
            if public_key not in self._given_contacts:
                self._keys_by_address[address] = public_key
            self._peers.pop(public_key, None)

    def add_seeds(self, addresses: Iterable[Address]) -> None:
        """Walk to these addresses (keys unknown) now and until they answer."""
        self.seeds.extend(addresses)
        self._walk_to_seeds()

    def peer_for(self, public_key: bytes) -> IPv8Peer | None:
        """The IPv8 peer with TrustChain key ``public_key``, if we know where it is."""
        key_bin = self._key_bins.get(public_key)
        if key_bin is None:
            key_bin = self._key_bins[public_key] = ipv8_public_key_bin(public_key)
        verified = self.network.get_verified_by_public_key_bin(key_bin)
        if verified is not None:
            return verified
        address = self.contacts.get(public_key)
        if address is None:
            return None
        peer = self._peers.get(public_key)
        if peer is None:
            peer = self._peers[public_key] = IPv8Peer(key_bin, address)
        return peer

    def known_public_keys(self) -> list[bytes]:
        """TrustChain keys of every peer we can reach: contacts and IPv8 neighbours."""
        keys = dict.fromkeys(self.contacts)
        for peer in self.get_peers():
            key = trustchain_key(peer)
            if key is not None:
                keys[key] = None
        keys.pop(self.public_key, None)
        return list(keys)

    def _walk_to_seeds(self) -> None:
        known = {p.address for p in self.get_peers()}
        for address in self.seeds:
            if address not in known:
                with contextlib.suppress(Exception):  # an unresolvable or closed address: try later
                    self.walk_to(address)

    def _sender(self, peer: IPv8Peer) -> bytes | None:
        """The sender's TrustChain key (learning its address), or None to drop the message."""
        key = trustchain_key(peer)
        if key is not None:
            self.add_contact(key, peer.address)
        return key

    # --- sending and limits --------------------------------------------------------

    def send(self, peer: IPv8Peer, payload: Payload) -> int:
        """Send one message (signed unless it only carries signed blocks), counting its bytes; the bytes sent."""
        return self.send_packet(peer, payload, sign=not isinstance(payload, UNSIGNED))

    def _decode_block(self, data: bytes) -> HalfBlock | None:
        try:
            return HalfBlock.decode_shared(data)
        except EncodingError:
            return None

    # --- proposal and agreement ----------------------------------------------------

    async def propose(
        self, counterparty: bytes, block_type: str, transaction: dict[str, Any], timeout: float = 10.0
    ) -> tuple[HalfBlock, HalfBlock]:
        """Sign a proposal to ``counterparty`` and wait for its agreement: (proposal, agreement).

        Raises TransactionTimeoutError, TransactionRejectedError, FraudDetectedError (before
        signing, or while waiting when a proof against the counterparty arrives), and
        PeerUnreachableError when no address is known for the counterparty.
        """
        if self.ledger.store.is_fraudulent(counterparty):
            raise FraudDetectedError(counterparty)
        peer = self.peer_for(counterparty)
        if peer is None:
            raise PeerUnreachableError(f"no address known for peer {counterparty.hex()[:16]}")
        proposal = self.ledger.propose(counterparty, block_type, transaction, group_commit=True)
        # Waiting from now: a fraud proof that arrives during the commit fails the request.
        waiting = self.open_request(PendingProposal(self, proposal, timeout + 1.0))
        message = ProposalMessage(proposal.encode(), self._history_for(counterparty, proposal))

        def resend() -> None:
            self.send(self.peer_for(counterparty) or peer, message)

        try:
            await self.commits.durable(self.ledger.store.batch)  # before anyone sees the proposal
            await self.until(waiting.done, resend, timeout)
        except TimeoutError:
            raise TransactionTimeoutError(
                f"no agreement from {counterparty.hex()[:16]} for block {proposal.sequence_number} in {timeout} s"
            ) from None
        finally:
            self.close_request(waiting)
        waiting.done.result()  # a rejection or a fraud proof raises here
        agreement = waiting.agreement
        assert agreement is not None  # done without an error: on_agreement set it
        self._publish(agreement)  # the counterparty published our proposal
        if self._held_by.get(counterparty, 0) < proposal.sequence_number:
            self._held_by[counterparty] = proposal.sequence_number
        return proposal, agreement

    def _history_for(self, counterparty: bytes, proposal: HalfBlock) -> list[bytes]:
        """Our blocks below ``proposal`` that ``counterparty`` may lack: the newest that fit."""
        end = proposal.sequence_number - 1
        most = min(self.settings.crawl_page_size, MAX_LISTED_BLOCKS)
        start = max(self._held_by.get(counterparty, 0) + 1, end - most + 1)
        if start > end:
            return []
        blocks = self.ledger.store.chain_encoded(self.public_key, start, end)
        budget = self.settings.max_packet_size - 512 - len(proposal.encode())
        kept: list[bytes] = []
        for data in reversed(blocks):
            budget -= len(data) + 2
            if budget < 0:
                break
            kept.append(data)
        kept.reverse()
        return kept

    @lazy_wrapper(ProposalMessage)
    async def on_proposal(self, peer: IPv8Peer, payload: ProposalMessage) -> None:
        """Countersign a proposal addressed to us, after fetching what we lack of its chain."""
        sender = self._sender(peer)
        proposal = self._decode_block(payload.block)
        if proposal is None or sender is None or proposal.public_key != sender:
            self.count_drop("malformed")
            return
        if proposal.link_public_key != self.public_key or not proposal.is_proposal:
            self.count_drop("not_for_us")
            return
        agreement = self.ledger.store.linked(proposal)
        if agreement is not None:  # our agreement was lost on the way (or a replay): send it again
            self.send(peer, AgreementMessage(agreement.encode()))
            self.count_drop("replay")
            return
        if proposal.hash in self._countersigning:
            return
        self._countersigning.add(proposal.hash)
        try:
            await self._countersign(peer, proposal, payload.history)
        finally:
            self._countersigning.discard(proposal.hash)

    def _receive_history(self, proposal: HalfBlock, history: list[bytes]) -> None:
        """Store the blocks of the proposer's chain that came with its proposal, as a crawl would."""
        # Keyed by hash, not sequence number: two blocks at one place are a fork the ledger
        # must see both halves of (a fraud proof), not one that silently replaces the other.
        blocks: dict[bytes, HalfBlock] = {}
        for data in history[: min(self.settings.crawl_page_size, MAX_LISTED_BLOCKS)]:
            block = self._decode_block(data)
            if (
                block is not None
                and block.public_key == proposal.public_key
                and block.sequence_number < proposal.sequence_number
                and block.hash not in blocks
                and block.verify_signature()
            ):
                blocks[block.hash] = block
        if blocks:
            self.ledger.receive_many(sorted(blocks.values(), key=lambda b: b.sequence_number))

    async def _countersign(self, peer: IPv8Peer, proposal: HalfBlock, history: list[bytes]) -> None:
        def reject(reason: str) -> None:
            self.send(peer, RejectionMessage(proposal.sequence_number, reason))

        if self.ledger.store.is_fraudulent(proposal.public_key):
            reject(FRAUD_REASON)
            return
        self._receive_history(proposal, history)
        missing = self.ledger.missing_before(proposal)
        if missing:
            with contextlib.suppress(PeerUnreachableError):  # the ledger decides on a partial view
                await self.crawl(proposal.public_key, missing.start, missing.stop - 1, peer=peer)
        try:
            agreement = self.ledger.countersign(proposal, group_commit=True)
        except FraudDetectedError:
            reject(FRAUD_REASON)
        except TransactionRejectedError as exc:
            reject(exc.reason)
        except InvalidBlockError as exc:
            reject(exc.reason)
        else:
            try:
                await self.commits.durable(self.ledger.store.batch)  # before anyone sees the agreement
            except LedgerError:  # not stored: the proposer's retry asks again
                return
            self.send(peer, AgreementMessage(agreement.encode()))
            self._publish(proposal)  # the proposer publishes our agreement

    @lazy_wrapper_unsigned(AgreementMessage)
    def on_agreement(self, source_address: Address, payload: AgreementMessage) -> None:
        """Complete a waiting proposal, or file a late agreement for one that timed out."""
        agreement = self._decode_block(payload.block)
        if agreement is None or agreement.link_public_key != self.public_key:
            return
        sender = agreement.public_key  # the ledger checks its signature
        waiting = self.find_request(PendingProposal, agreement.link_sequence_number)
        if waiting is None:
            if self.ledger.store.get(self.public_key, agreement.link_sequence_number) is not None:
                self.ledger.receive(agreement)
            return
        if waiting.proposal.link_public_key != sender or waiting.done.done():
            return
        result = self.ledger.receive(agreement)
        if not result.is_invalid:
            waiting.agreement = agreement
            waiting.done.set_result(None)

    @lazy_wrapper(RejectionMessage)
    def on_rejection(self, peer: IPv8Peer, payload: RejectionMessage) -> None:
        """Fail a waiting proposal that its counterparty refused."""
        sender = self._sender(peer)
        waiting = self.find_request(PendingProposal, payload.sequence_number)
        if waiting is None or sender is None or waiting.proposal.link_public_key != sender or waiting.done.done():
            return
        waiting.done.set_exception(TransactionRejectedError(payload.reason, peer=sender.hex()[:16]))

    # --- crawling ------------------------------------------------------------------

    async def crawl(
        self, public_key: bytes, start: int = 1, end: int | None = None, *, peer: IPv8Peer | None = None
    ) -> list[HalfBlock]:
        """Fetch ``public_key``'s chain in [start, end] (end None: to its head), validate and store it.

        Asks ``peer`` (default: the chain's owner). Returns the blocks that came back and are not
        invalid, by sequence number (fewer than asked when the peer lacks some or stops answering
        after a page). Raises PeerUnreachableError when nothing came back in time.
        """
        peer = peer or self.peer_for(public_key)
        if peer is None:
            raise PeerUnreachableError(f"no address known for peer {public_key.hex()[:16]}")
        page = self.settings.crawl_page_size
        deadline = asyncio.get_running_loop().time() + self.settings.crawl_timeout
        fetched: list[HalfBlock] = []
        while end is None or start <= end:
            page_end = start + page - 1 if end is None else min(end, start + page - 1)
            try:
                blocks = await self._crawl_page(peer, public_key, start, page_end, deadline)
            except PeerUnreachableError:
                if not fetched:
                    raise
                break  # keep the pages that came
            fetched.extend(blocks)
            if len({block.sequence_number for block in blocks}) < page_end - start + 1:  # a fork counts once
                break
            start = page_end + 1
        fetched.sort(key=lambda b: b.sequence_number)
        results = self.ledger.receive_many(fetched)
        return [block for block, result in zip(fetched, results, strict=True) if not result.is_invalid]

    async def _crawl_page(
        self, peer: IPv8Peer, public_key: bytes, start: int, end: int, deadline: float
    ) -> list[HalfBlock]:
        remaining = deadline - asyncio.get_running_loop().time()
        crawl = self.open_request(PendingCrawl(self, public_key, start, end, max(remaining, 0.0) + 1.0))
        request = CrawlRequestMessage(crawl.number, public_key, start, end)
        try:
            await self.until(crawl.done, lambda: self.send(peer, request), remaining)
        except TimeoutError:
            if crawl.total is None:
                raise PeerUnreachableError(
                    f"crawl of {public_key.hex()[:16]} [{start}, {end}] got no answer in time"
                ) from None
        finally:
            self.close_request(crawl)
        return list(crawl.blocks.values())

    @lazy_wrapper(CrawlRequestMessage)
    def on_crawl_request(self, peer: IPv8Peer, payload: CrawlRequestMessage) -> None:
        """Answer with the blocks we hold in the range (at most a page), in as few packets as fit,
        unless the request's address has had its share of answers (crawl_answer_rate)."""
        if not self.crawl_answers.allows(peer.address):  # before the store is read
            self.count_drop("crawl_budget")
            return
        sender = self._sender(peer)
        if sender is None or self.ledger.store.is_fraudulent(sender) or not 1 <= payload.start <= MAX_SEQUENCE_NUMBER:
            return
        end = min(payload.end, MAX_SEQUENCE_NUMBER) or None  # u64 on the wire; SQLite holds i64
        if end is not None and end < payload.start:
            return
        page = self.settings.crawl_page_size
        end = payload.start + page - 1 if end is None else min(end, payload.start + page - 1)
        blocks = self.ledger.store.chain_encoded(payload.public_key, payload.start, end)
        sent = sum(self.send(peer, CrawlResponseMessage(payload.identifier, len(blocks), batch))
                   for batch in pack_blocks(blocks, self.settings.max_packet_size - 512))  # room for headers
        self.crawl_answers.spend(peer.address, sent)

    @lazy_wrapper_unsigned(CrawlResponseMessage)
    def on_crawl_response(self, source_address: Address, payload: CrawlResponseMessage) -> None:
        """Collect blocks of a crawl we asked for; blocks outside the request are dropped."""
        crawl = self.find_request(PendingCrawl, payload.identifier)
        if crawl is None or crawl.done.done() or payload.total > self.settings.crawl_page_size:
            return
        for data in payload.blocks:
            block = self._decode_block(data)
            if (
                block is not None
                and block.public_key == crawl.public_key
                and crawl.start <= block.sequence_number <= crawl.end
                and block.verify_signature()
            ):
                crawl.blocks[block.hash] = block  # both halves of a fork, each copy once
        crawl.total = payload.total
        if len(crawl.blocks) >= payload.total:
            crawl.done.set_result(None)

    # --- gossip --------------------------------------------------------------------

    def _publish(self, block: HalfBlock) -> None:
        """Push the counterparty's half of a new pair to a random fanout and to its witnesses.

        Each party publishes the other's block: a forker would not publish its own, and an
        honest party's copy is what lets the witnesses see both halves of a fork.
        """
        chosen = witnesses(block.public_key, block.sequence_number, self.known_public_keys(), self.settings.witnesses)
        data = block.encode()
        fanout = self._sample(self.settings.gossip_fanout, exclude={block.public_key, *chosen})
        self._send_to_all(fanout, BlockBroadcastMessage(self.settings.gossip_ttl, data))
        self._send_to_all(chosen, BlockBroadcastMessage(1, data))

    def _sample(self, count: int, exclude: Iterable[bytes] = ()) -> list[bytes]:
        excluded = set(exclude)
        candidates = [k for k in self.known_public_keys() if k not in excluded]
        return random.sample(candidates, min(count, len(candidates)))

    def _send_to_all(self, public_keys: Iterable[bytes], payload: Payload) -> None:
        """Send an unsigned message (gossip, fraud proofs) to these peers, packed once for all."""
        self.send_unsigned_to_all((peer for peer in map(self.peer_for, public_keys) if peer is not None), payload)

    @lazy_wrapper_unsigned(BlockBroadcastMessage)
    def on_block_broadcast(self, source_address: Address, payload: BlockBroadcastMessage) -> None:
        """Store a gossiped block (the ledger finds forks) and pass it on while its ttl lasts."""
        block = self._decode_block(payload.block)
        if block is None or self.ledger.store.is_fraudulent(block.public_key):
            return
        held = self.ledger.store.get(block.public_key, block.sequence_number)  # the hash covers both
        if held is not None and held.hash == block.hash:
            return
        # Gossip joins the store's open transaction, committed within received_commit_delay (commits.py).
        store = self.ledger.store
        store.open_batch()
        try:
            result = self.ledger.receive(block)
        finally:
            if store.uncommitted_blocks >= self.settings.received_commit_blocks:
                self.commits.soon()
            else:
                self.commits.later(self.settings.received_commit_delay)
        if result.is_invalid:
            return
        if payload.ttl > 1:
            forward = BlockBroadcastMessage(payload.ttl - 1, payload.block)
            sender = self._keys_by_address.get(source_address)
            exclude = {block.public_key} if sender is None else {sender, block.public_key}
            self._send_to_all(self._sample(self.settings.gossip_fanout, exclude=exclude), forward)

    # --- fraud proofs --------------------------------------------------------------

    @lazy_wrapper_unsigned(FraudProofMessage)
    def on_fraud_proof(self, source_address: Address, payload: FraudProofMessage) -> None:
        """Verify and keep a fraud proof, then spread it if it is news."""
        sender = self._keys_by_address.get(source_address)
        try:
            proof = FraudProof.decode(payload.proof)
        except EncodingError:
            return
        known = proof.public_key in self.rumours
        if not known and not proof.verify():  # a proof we hold needs no second check
            return
        if not known:
            self.ledger.receive_fraud_proof(proof)  # a new proof reaches _spread_fraud through on_fraud
            self._spread_fraud(proof)
        if sender is not None:
            self.rumours.heard_from(proof.public_key, sender)

    def _spread_fraud(self, proof: FraudProof) -> None:
        """A new proof: fail our deals with the forker, and start its rumour."""
        forker = proof.public_key
        if forker in self.rumours:
            return
        for waiting in self.pending(PendingProposal):
            if waiting.proposal.link_public_key == forker and not waiting.done.done():
                waiting.done.set_exception(FraudDetectedError(forker))
        self.rumours.start(proof)

    def _push_proof(self, proof: bytes, holders: set[bytes], count: int) -> None:
        self._send_to_all(self._sample(count, exclude=holders), FraudProofMessage(proof))
