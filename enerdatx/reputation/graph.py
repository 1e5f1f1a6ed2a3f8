"""The interaction graph: who contributed how much to whom, from countersigned TrustChain pairs.

An edge ``u -> v`` says that ``u`` contributed to ``v``. Only complete pairs count (a proposal
and the agreement that links to it, both held); records and lone halves never do, because a
half nobody countersigned is a claim, not an interaction.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import networkx as nx

from enerdatx.errors import ReputationError
from enerdatx.trustchain import HalfBlock

__all__ = [
    "ContributionRule",
    "Direction",
    "InteractionGraph",
    "WeightFunction",
    "amount_weight",
]

WeightFunction = Callable[[HalfBlock, HalfBlock], int]
"""``weight(proposal, agreement)``: the value of one interaction; 0 or less, or a KeyError,
TypeError, ValueError or AttributeError on a transaction it cannot read, means it does not count."""

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000


def amount_weight(proposal: HalfBlock, agreement: HalfBlock) -> int:
    """The integer ``amount`` of the proposal's transaction (0 when absent, not an int, or negative)."""
    amount = proposal.transaction.get("amount")
    # bool is an int subclass; ``True`` is not an amount.
    return amount if type(amount) is int and amount > 0 else 0


class Direction(enum.Enum):
    """Who contributed to whom in a countersigned pair."""

    TO_PROPOSER = "to_proposer"
    """The countersigner served the proposer, who pays with the proposal (a buyer's payment
    proposal, countersigned by the seller with the data key): the seller's data is the
    contribution, the payment its compensation."""

    FROM_PROPOSER = "from_proposer"
    """The proposer served the countersigner (Tribler's bandwidth accounting: "I uploaded N
    bytes to you, sign here"), or a payment is counted as the payer's contribution."""


@dataclass(frozen=True)
class ContributionRule:
    """How a countersigned pair becomes an edge: its value, its direction, which block types count."""

    weight: WeightFunction = amount_weight
    direction: Direction = Direction.TO_PROPOSER
    block_types: Collection[str] | None = None  # None: every type

    def contribution(self, proposal: HalfBlock, agreement: HalfBlock) -> tuple[bytes, bytes, int] | None:
        """``(contributor, beneficiary, value)`` of a pair, or None when it does not count."""
        if self.block_types is not None and proposal.type not in self.block_types:
            return None
        try:
            value = self.weight(proposal, agreement)
        except (KeyError, TypeError, ValueError, AttributeError):
            # Transactions come from other peers: one a weight function cannot read is worth 0,
            # and must not break the ledger callback that brought it.
            logger.debug("weight function cannot read %r; not counted", proposal)
            return None
        if type(value) is not int or value <= 0:
            return None
        if self.direction is Direction.TO_PROPOSER:
            return agreement.public_key, proposal.public_key, value
        return proposal.public_key, agreement.public_key, value


def _is_pair(proposal: HalfBlock, agreement: HalfBlock) -> bool:
    """The agreement answers this proposal and is signed by the one it was addressed to."""
    return (
        proposal.is_proposal
        and not proposal.is_record
        and agreement.public_key == proposal.link_public_key
        and agreement.link_public_key == proposal.public_key
        and agreement.link_sequence_number == proposal.sequence_number
    )


class InteractionGraph:
    """A networkx DiGraph of contributions, grown pair by pair.

    Edge attributes: ``amount`` (total value, int; NetFlow's capacity), ``count`` (pairs),
    and the exponentially decayed value ``decayed`` as of time ``as_of`` (milliseconds), kept
    so that Temporal PageRank needs no per-pair history: adding a pair at time t rescales the
    sum to max(t, as_of) first, which gives the same value in any arrival order.
    """

    def __init__(self, rule: ContributionRule | None = None, *, half_life_ms: int = 30 * DAY_MS) -> None:
        if half_life_ms <= 0:
            raise ReputationError(f"half_life_ms must be positive, not {half_life_ms}")
        self.rule = rule or ContributionRule()
        self.half_life_ms = half_life_ms
        self.graph: nx.DiGraph = nx.DiGraph()
        self._counted: set[tuple[bytes, int]] = set()  # proposals whose pair is already an edge

    def add_pair(self, proposal: HalfBlock, agreement: HalfBlock) -> bool:
        """Count a countersigned pair once; True if it added to the graph."""
        key = (proposal.public_key, proposal.sequence_number)
        if key in self._counted or not _is_pair(proposal, agreement):
            return False
        contribution = self.rule.contribution(proposal, agreement)
        if contribution is None:
            return False
        self._counted.add(key)
        contributor, beneficiary, value = contribution
        # The agreement is signed after the proposal: that is when the interaction completed.
        timestamp = max(proposal.timestamp, agreement.timestamp)
        data = self.graph.get_edge_data(contributor, beneficiary)
        if data is None:
            self.graph.add_edge(contributor, beneficiary, amount=value, count=1, decayed=float(value), as_of=timestamp)
            return True
        data["amount"] += value
        data["count"] += 1
        if timestamp >= data["as_of"]:
            data["decayed"] = data["decayed"] * self.decay(timestamp - data["as_of"]) + value
            data["as_of"] = timestamp
        else:
            data["decayed"] += value * self.decay(data["as_of"] - timestamp)
        return True

    def add_blocks(self, blocks: Iterable[HalfBlock]) -> int:
        """Pair up blocks held in any order (e.g. a whole store) and add every pair; returns pairs added."""
        proposals: dict[tuple[bytes, int], HalfBlock] = {}
        agreements: list[HalfBlock] = []
        for block in blocks:
            if block.is_record:
                continue
            if block.is_proposal:
                proposals[(block.public_key, block.sequence_number)] = block
            else:
                agreements.append(block)
        added = 0
        for agreement in agreements:
            proposal = proposals.get((agreement.link_public_key, agreement.link_sequence_number))
            if proposal is not None:
                added += self.add_pair(proposal, agreement)
        return added

    def decay(self, age_ms: int) -> float:
        """The factor 2^(-age / half-life) by which a contribution of that age counts."""
        return math.pow(2.0, -max(age_ms, 0) / self.half_life_ms)

    def decayed_weight(self, contributor: bytes, beneficiary: bytes, now: int) -> float:
        """The value of everything ``contributor`` gave ``beneficiary``, decayed to time ``now``."""
        data = self.graph.get_edge_data(contributor, beneficiary)
        return 0.0 if data is None else data["decayed"] * self.decay(now - data["as_of"])

    def __len__(self) -> int:
        return len(self._counted)
