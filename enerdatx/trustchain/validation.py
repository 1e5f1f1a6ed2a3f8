"""Validation of half-blocks against the rules of TrustChain and what a peer already holds.

The result levels are the original design's: a block is checked against the blocks next to
it in its chain and its linked counterpart; the level says how much of that context was known.
Every rejection names the rule it broke (``ValidationResult.reasons``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from enerdatx.errors import EncodingError
from enerdatx.trustchain.block import GENESIS_HASH, NO_COUNTERPARTY, HalfBlock, now_ms
from enerdatx.trustchain.encoding import HASH_SIZE, KEY_SIZE, SIGNATURE_SIZE

if TYPE_CHECKING:
    from enerdatx.trustchain.store import BlockStore

__all__ = ["ValidationLevel", "ValidationResult", "Rule", "validate", "check_invariants"]

MIN_TIMESTAMP = 946_684_800_000  # 2000-01-01T00:00:00Z: earlier stamps are clock errors
MAX_CLOCK_SKEW_MS = 10 * 60 * 1000


class ValidationLevel(enum.Enum):
    """How a block relates to what is known (the original TrustChain result levels)."""

    VALID = "valid"  # its neighbours on both sides are known and consistent
    PARTIAL = "partial"  # other blocks of the chain are known, but neither neighbour
    PARTIAL_NEXT = "partial_next"  # the previous block is known, the next is not
    PARTIAL_PREVIOUS = "partial_previous"  # the next block is known, the previous is not
    NO_INFO = "no_info"  # nothing else of this chain is known
    INVALID = "invalid"  # it breaks a rule


class Rule(str, enum.Enum):
    """The names of the rules a block can break."""

    MALFORMED = "malformed"  # a field of the wrong size or range, or unencodable
    BAD_SIGNATURE = "bad_signature"
    BAD_SEQUENCE_NUMBER = "bad_sequence_number"  # zero
    GENESIS_PREVIOUS_HASH = "genesis_previous_hash"  # sequence 1 with a previous hash
    MISSING_PREVIOUS_HASH = "missing_previous_hash"  # sequence > 1 pointing at genesis
    SELF_LINK = "self_link"
    RECORD_WITH_LINK_SEQUENCE = "record_with_link_sequence"  # an agreement with no counterparty
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    FORK = "fork"  # another block with this public key and sequence number is held
    PREVIOUS_HASH_MISMATCH = "previous_hash_mismatch"  # does not point at the held previous block
    NEXT_HASH_MISMATCH = "next_hash_mismatch"  # the held next block does not point at it
    LINKED_MISMATCH = "linked_mismatch"  # the two halves of a pair disagree
    DOUBLE_COUNTERSIGN = "double_countersign"  # a proposal countersigned twice by its addressee


@dataclass(frozen=True)
class ValidationResult:
    """A level and, for an invalid block, the rules it broke."""

    level: ValidationLevel
    reasons: tuple[str, ...] = ()

    @property
    def is_invalid(self) -> bool:
        """True when the block broke a rule."""
        return self.level is ValidationLevel.INVALID

    @classmethod
    def invalid(cls, *rules: Rule) -> ValidationResult:
        """An invalid result naming the broken rules."""
        return cls(ValidationLevel.INVALID, tuple(rule.value for rule in rules))


def check_invariants(block: HalfBlock, *, now: int | None = None) -> list[Rule]:
    """The rules a block breaks on its own, without any other block; [] if none."""
    if (
        len(block.public_key) != KEY_SIZE
        or len(block.link_public_key) != KEY_SIZE
        or len(block.previous_hash) != HASH_SIZE
        or len(block.signature) != SIGNATURE_SIZE
    ):
        return [Rule.MALFORMED]
    broken: list[Rule] = []
    if block.sequence_number < 1:
        broken.append(Rule.BAD_SEQUENCE_NUMBER)
    if block.sequence_number == 1 and block.previous_hash != GENESIS_HASH:
        broken.append(Rule.GENESIS_PREVIOUS_HASH)
    if block.sequence_number > 1 and block.previous_hash == GENESIS_HASH:
        broken.append(Rule.MISSING_PREVIOUS_HASH)
    if block.link_public_key == block.public_key:
        broken.append(Rule.SELF_LINK)
    if block.link_public_key == NO_COUNTERPARTY and block.link_sequence_number != 0:
        broken.append(Rule.RECORD_WITH_LINK_SEQUENCE)
    now = now_ms() if now is None else now
    if not MIN_TIMESTAMP <= block.timestamp <= now + MAX_CLOCK_SKEW_MS:
        broken.append(Rule.TIMESTAMP_OUT_OF_RANGE)
    try:
        if not block.verify_signature():
            broken.append(Rule.BAD_SIGNATURE)
    except EncodingError:
        broken.append(Rule.MALFORMED)
    return broken


def validate(
    block: HalfBlock,
    store: BlockStore,
    *,
    now: int | None = None,
    signature_checked: bool = False,
    neighbours: tuple[HalfBlock | None, HalfBlock | None, HalfBlock | None] | None = None,
) -> tuple[ValidationResult, HalfBlock | None]:
    """Validate ``block`` against ``store``; also return the held block it forks with, if any.

    ``signature_checked`` skips the invariant checks for a block we just signed ourselves.
    ``neighbours`` is ``store.neighbours(block's place)`` when the caller has just asked it.
    """
    if not signature_checked:
        broken = check_invariants(block, now=now)
        if broken:
            return ValidationResult.invalid(*broken), None

    previous, same, following = neighbours or store.neighbours(block.public_key, block.sequence_number)
    if same is not None:
        if same.hash == block.hash:
            return _level(block, previous, following, store), None
        return ValidationResult.invalid(Rule.FORK), same

    broken = []
    if previous is not None and block.previous_hash != previous.hash:
        broken.append(Rule.PREVIOUS_HASH_MISMATCH)
    if following is not None and following.previous_hash != block.hash:
        broken.append(Rule.NEXT_HASH_MISMATCH)
    broken.extend(_check_links(block, store))
    if broken:
        return ValidationResult.invalid(*broken), None
    return _level(block, previous, following, store), None


def _check_links(block: HalfBlock, store: BlockStore) -> list[Rule]:
    if block.is_record:
        return []
    if block.is_proposal:
        # Agreements by anyone but the addressee are theirs to answer for (see
        # TrustChain.receive); only the addressee's agreement can disagree with the proposal.
        agreements = store.agreements_for(block.public_key, block.sequence_number)
        if any(a.public_key == block.link_public_key and a.type != block.type for a in agreements):
            return [Rule.LINKED_MISMATCH]
        return []
    proposal = store.get(block.link_public_key, block.link_sequence_number)
    if proposal is not None and (
        proposal.link_public_key != block.public_key
        or not proposal.is_proposal
        or proposal.type != block.type
    ):
        return [Rule.LINKED_MISMATCH]
    others = store.agreements_for(block.link_public_key, block.link_sequence_number)
    if any(other.public_key == block.public_key and other.hash != block.hash for other in others):
        return [Rule.DOUBLE_COUNTERSIGN]
    return []


def _level(
    block: HalfBlock, previous: HalfBlock | None, following: HalfBlock | None, store: BlockStore
) -> ValidationResult:
    has_previous = previous is not None or block.sequence_number == 1
    if has_previous and following is not None:
        return ValidationResult(ValidationLevel.VALID)
    if has_previous:
        return ValidationResult(ValidationLevel.PARTIAL_NEXT)
    if following is not None:
        return ValidationResult(ValidationLevel.PARTIAL_PREVIOUS)
    if store.latest_sequence_number(block.public_key) > 0:
        return ValidationResult(ValidationLevel.PARTIAL)
    return ValidationResult(ValidationLevel.NO_INFO)
