"""One peer's TrustChain ledger, in process: sign, countersign, validate and store half-blocks.

It knows nothing of networks or markets: the IPv8 community carries its blocks, and the
market decides through a *policy* per block type whether to countersign a proposal and
with which agreement transaction.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from enerdatx.crypto import Identity
from enerdatx.errors import FraudDetectedError, InvalidBlockError, TransactionRejectedError
from enerdatx.trustchain.block import GENESIS_HASH, NO_COUNTERPARTY, HalfBlock, now_ms
from enerdatx.trustchain.encoding import encode_type
from enerdatx.trustchain.fraud import FraudProof
from enerdatx.trustchain.store import BlockStore
from enerdatx.trustchain.validation import Rule, ValidationLevel, ValidationResult, validate

__all__ = ["TrustChain", "Policy"]

logger = logging.getLogger(__name__)

Policy = Callable[["TrustChain", HalfBlock], "dict[str, Any] | None"]
"""Decides on a proposal: returns the agreement's transaction (None: the proposal's) or raises
TransactionRejectedError."""


class TrustChain:
    """A peer's ledger: its own chain plus what it learnt of others', in one BlockStore."""

    def __init__(
        self, identity: Identity, store: BlockStore, *, clock: Callable[[], int] | None = None
    ) -> None:
        # Each was an AttributeError on .public_key or .head, naming neither argument.
        if not isinstance(identity, Identity):
            raise TypeError(f"a TrustChain's identity is an Identity (Identity.load(path)), not {type(identity).__name__}")
        if not isinstance(store, BlockStore):
            raise TypeError(f"a TrustChain's store is a BlockStore (BlockStore(path)), not {type(store).__name__}")
        self.identity = identity
        self.store = store
        self.public_key = identity.public_key
        self._clock = clock or now_ms
        self._policies: dict[str, Policy] = {}
        self._block_listeners: list[Callable[[HalfBlock], object]] = []
        self._fraud_listeners: list[Callable[[FraudProof], None]] = []
        self._head = store.head(self.public_key)
        self._signing_held: str | None = None

    # --- configuration -------------------------------------------------------------------

    def register_policy(self, block_type: str, policy: Policy) -> None:
        """Countersign proposals of ``block_type`` as ``policy`` decides (one policy per type).

        EncodingError for a type no block can have ("", 5): its policy would silently never apply;
        TypeError for a policy that is not callable.
        """
        encode_type(block_type)
        if not callable(policy):  # it was kept, and the first proposal of that type raised from the network handler
            raise TypeError(f"a policy is a function (ledger, proposal) -> transaction or None, not {type(policy).__name__}")
        self._policies[block_type] = policy

    def subscribe(self, callback: Callable[[HalfBlock], object]) -> None:
        """Call ``callback`` with every block newly stored.

        Our own blocks are heard of after their commit. Blocks of others are heard of once
        stored, visible to every read of this store, before the commit of the gossip batch
        they wait in (see commits.py); only a failed commit (a disk error) could still undo them.
        """
        self._block_listeners.append(callback)

    def on_fraud(self, callback: Callable[[FraudProof], None]) -> None:
        """Call ``callback`` with every new fraud proof, after it is committed."""
        self._fraud_listeners.append(callback)

    # --- our own chain -------------------------------------------------------------------

    @contextlib.contextmanager
    def signing_held(self, reason: str) -> Iterator[None]:
        """Sign nothing inside (TransactionRejectedError(``reason``)), while our chain may lack blocks we signed.

        A peer that restarts from a database that lost its tail would sign at a place its
        counterparties already hold another block at: a fork. It holds signing while it asks
        them for its own chain (see enerdatx.recovery.catch_up); proposals that arrive meanwhile
        are refused with ``reason``, and their proposers may try again.
        """
        if self._signing_held is not None:
            raise RuntimeError("signing is held already")
        self._signing_held = reason
        try:
            yield
        finally:
            self._signing_held = None

    @property
    def head(self) -> HalfBlock | None:
        """The latest block of our own chain."""
        return self._head

    def propose(
        self, counterparty: bytes, block_type: str, transaction: dict[str, Any], *, group_commit: bool = False
    ) -> HalfBlock:
        """Sign and store a proposal to ``counterparty``; it still needs their agreement.

        ``group_commit``: the block joins the store's open durable batch, and the caller must
        :meth:`commit` before it shows the block to anyone (one fsync for a group of blocks).
        """
        if counterparty in (self.public_key, NO_COUNTERPARTY):
            raise InvalidBlockError(Rule.SELF_LINK.value, "a proposal needs another party")
        if self.store.is_fraudulent(counterparty):
            raise FraudDetectedError(counterparty)
        return self._sign_and_store(counterparty, 0, block_type, transaction, group_commit=group_commit)

    def record(self, block_type: str, transaction: dict[str, Any]) -> HalfBlock:
        """Sign and store a unilateral record (a listing, a complaint) that nobody countersigns."""
        return self._sign_and_store(NO_COUNTERPARTY, 0, block_type, transaction)

    def countersign(
        self, proposal: HalfBlock, transaction: dict[str, Any] | None = None, *, group_commit: bool = False
    ) -> HalfBlock:
        """Agree to a proposal addressed to us: validate, ask the policy, sign, store both halves.

        Countersigning the same proposal again returns the agreement already given, so a
        proposer may safely retry. ``group_commit`` as in :meth:`propose`.
        """
        if not isinstance(proposal, HalfBlock):  # an AttributeError on .link_public_key otherwise
            raise TypeError(
                f"countersign takes a HalfBlock (HalfBlock.decode(data) for bytes), not {type(proposal).__name__}"
            )
        if proposal.link_public_key != self.public_key or not proposal.is_proposal:
            raise InvalidBlockError("not_addressed_to_us", "only proposals to this peer can be countersigned")
        if self.store.is_fraudulent(proposal.public_key):
            raise FraudDetectedError(proposal.public_key)
        held = self.store.get(proposal.public_key, proposal.sequence_number)
        if held is not None and held.hash == proposal.hash:
            # We store a proposal only together with our agreement, or when it came as gossip.
            for agreement in self.store.agreements_for(proposal.public_key, proposal.sequence_number):
                if agreement.public_key == self.public_key:
                    return agreement
        result = self.receive(proposal, store=False)
        if result.is_invalid:
            if Rule.FORK.value in result.reasons:
                raise FraudDetectedError(proposal.public_key)
            raise InvalidBlockError(result.reasons[0], "proposal refused", block_hash=proposal.hash)
        if transaction is None:
            policy = self._policies.get(proposal.type)
            if policy is None:
                raise TransactionRejectedError(f"no policy accepts blocks of type {proposal.type!r}")
            transaction = policy(self, proposal)
            if transaction is None:
                transaction = proposal.transaction
        return self._sign_and_store(
            proposal.public_key, proposal.sequence_number, proposal.type, transaction, also_store=proposal,
            group_commit=group_commit,
        )

    def commit(self) -> None:
        """Commit the blocks signed with ``group_commit`` (one fsync for all); they may be shown now.

        If the commit fails, they are lost together and the chain's head is read back from the store.
        """
        try:
            self.store.commit_batch()
        except BaseException:
            self._head = self.store.head(self.public_key)
            raise

    def _sign_and_store(
        self,
        link_public_key: bytes,
        link_sequence_number: int,
        block_type: str,
        transaction: dict[str, Any],
        also_store: HalfBlock | None = None,
        group_commit: bool = False,
    ) -> HalfBlock:
        if self._signing_held is not None:
            raise TransactionRejectedError(self._signing_held)
        head = self._head
        stored = self.store.latest_sequence_number(self.public_key)
        if stored != (head.sequence_number if head else 0):
            # Someone else wrote our chain into our store: signing on would fork it.
            raise InvalidBlockError(
                "head_moved", f"our head is {head.sequence_number if head else 0} but the store holds {stored}"
            )
        block = HalfBlock.create(
            self.identity,
            sequence_number=head.sequence_number + 1 if head else 1,
            previous_hash=head.hash if head else GENESIS_HASH,
            link_public_key=link_public_key,
            link_sequence_number=link_sequence_number,
            block_type=block_type,
            transaction=transaction,
            timestamp=self._clock(),
        )
        # Our own block must reach the disk before anyone can see it (see BlockStore.transaction):
        # now, or with the group's commit (see commit), which the caller waits for before sending.
        # insert_own refuses a place already taken: that would be a fork of our own chain.
        try:
            if group_commit:
                self.store.open_batch(durable=True)
            new = self.store.insert_own(block, also=also_store, durable=not group_commit)
            self.store.after_commit(lambda: self._notify_blocks(new))
        except BaseException:
            # Committing an open batch first may have failed and lost blocks we signed into it.
            self._head = self.store.head(self.public_key)
            raise
        self._head = block
        return block

    # --- blocks from others ----------------------------------------------------------------

    def validate(self, block: HalfBlock) -> ValidationResult:
        """Validate ``block`` against what we hold; store nothing."""
        return validate(block, self.store, now=self._clock())[0]

    def receive(self, block: HalfBlock, *, store: bool = True) -> ValidationResult:
        """Validate a block from elsewhere and store it unless it is invalid.

        A block that forks a held one yields an INVALID result with reason ``fork``, and a
        fraud proof that is stored and announced to ``on_fraud`` listeners.
        """
        if not isinstance(block, HalfBlock):  # an AttributeError on .public_key otherwise
            raise TypeError(f"receive takes a HalfBlock (HalfBlock.decode(data) for bytes), not {type(block).__name__}")
        # One question to the store for the block's place and both sides of it: whether we hold
        # it already, and what validating it needs.
        around = self.store.neighbours(block.public_key, block.sequence_number)
        held = around[1]
        if held is not None and held.hash == block.hash:
            return validate(block, self.store, signature_checked=True, neighbours=around)[0]
        result, forked = validate(block, self.store, now=self._clock(), neighbours=around)
        if forked is not None:
            self.receive_fraud_proof(FraudProof.of(forked, block))
        if store and not result.is_invalid:
            with self.store.transaction(durable=False):
                new = self.store.insert_validated([block])
                if block.is_proposal and not block.is_record:
                    self._drop_impostor_agreements(block)
                self.store.after_commit(lambda: self._notify_blocks(new))
            # A block of our own chain we did not hold (restored from a peer after losing our
            # database): never sign below it again.
            if block.public_key == self.public_key and (
                self._head is None or block.sequence_number > self._head.sequence_number
            ):
                self._head = block
        return result

    def _drop_impostor_agreements(self, proposal: HalfBlock) -> None:
        # An agreement stored before its proposal was known, by someone the proposal was not
        # addressed to, turns out invalid now; it must not block the real agreement.
        impostors = [
            agreement
            for agreement in self.store.agreements_for(proposal.public_key, proposal.sequence_number)
            if agreement.public_key != proposal.link_public_key
        ]
        if impostors:
            logger.info("dropping %d agreements to a proposal not addressed to them", len(impostors))
            self.store.remove_blocks(impostors)

    def receive_many(self, blocks: list[HalfBlock]) -> list[ValidationResult]:
        """Receive blocks in order (a crawled range) in one SQL transaction."""
        with self.store.transaction(durable=False):
            return [self.receive(block) for block in blocks]

    def receive_fraud_proof(self, proof: FraudProof) -> bool:
        """Verify and store a fraud proof; True if it is the first against that key."""
        if self.store.is_fraudulent(proof.public_key) or not proof.verify():
            return False
        if not self.store.add_fraud_proof(proof):
            return False
        logger.warning("fraud proof: %s forked its chain at %d", proof.public_key.hex()[:16], proof.sequence_number)
        for callback in self._fraud_listeners:
            callback(proof)
        return True

    def is_fraudulent(self, public_key: bytes) -> bool:
        """True when we hold a fraud proof against ``public_key``."""
        return self.store.is_fraudulent(public_key)

    def missing_before(self, block: HalfBlock) -> range:
        """The sequence numbers of ``block``'s chain below it from the first we lack to the last
        (crawl these); empty when we hold all of them."""
        below = block.sequence_number - 1
        held = self.store.held_sequence_numbers(block.public_key, 1, below)
        if len(held) == below:
            return range(0)
        first_missing = next((i for i, seq in enumerate(held, start=1) if seq != i), len(held) + 1)
        # The blocks held at the top (a proposal brings the newest of its chain) need no crawl.
        top = next((n for n, seq in enumerate(reversed(held)) if seq != below - n), len(held))
        return range(first_missing, below - top + 1)

    def chain_level(self, public_key: bytes) -> ValidationLevel:
        """VALID when we hold that chain complete from 1 to its latest known block."""
        latest = self.store.latest_sequence_number(public_key)
        if latest == 0:
            return ValidationLevel.NO_INFO
        held = len(self.store.held_sequence_numbers(public_key, 1, latest))
        return ValidationLevel.VALID if held == latest else ValidationLevel.PARTIAL

    def _notify_blocks(self, blocks: list[HalfBlock]) -> None:
        for block in blocks:
            for callback in self._block_listeners:
                callback(block)
