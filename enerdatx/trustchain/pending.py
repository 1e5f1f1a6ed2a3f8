"""What the TrustChain community waits for: agreements to its proposals, pages of its crawls.

Entries of the community's ``RequestCache`` (:class:`enerdatx.overlay.Pending`), filled by
the message handlers and awaited by ``TrustChainCommunity.propose`` and ``.crawl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from enerdatx.overlay import Pending

if TYPE_CHECKING:
    from enerdatx.overlay import Overlay
    from enerdatx.trustchain.block import HalfBlock

__all__ = ["PendingCrawl", "PendingProposal"]


class PendingProposal(Pending):
    """Our proposal awaiting its agreement, under its sequence number."""

    PREFIX = "proposal"

    def __init__(self, overlay: Overlay, proposal: HalfBlock, timeout: float) -> None:
        super().__init__(overlay, timeout, number=proposal.sequence_number)
        self.proposal = proposal
        self.agreement: HalfBlock | None = None


class PendingCrawl(Pending):
    """One page of a crawl: blocks of ``public_key`` in [start, end], as they come."""

    PREFIX = "crawl"

    def __init__(self, overlay: Overlay, public_key: bytes, start: int, end: int, timeout: float) -> None:
        super().__init__(overlay, timeout)
        self.public_key, self.start, self.end = public_key, start, end
        # Keyed by hash: a peer answering with two blocks at one sequence number shows a fork,
        # and the ledger needs both halves for the fraud proof.
        self.blocks: dict[bytes, HalfBlock] = {}
        self.total: int | None = None
