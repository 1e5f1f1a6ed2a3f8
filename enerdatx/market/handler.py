"""What the market community asks of the market it carries: the one seam between bytes and rules.

:class:`~enerdatx.market.community.MarketCommunity` moves bytes and decides nothing; every
question it has goes through this Protocol, given to it in its settings. The one class that
implements it is :class:`~enerdatx.market.service.MarketService`; tests and fuzzers may pass
their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ipv8.peer import Peer as IPv8Peer

    from enerdatx.trustchain import HalfBlock

__all__ = ["MarketHandler"]


class MarketHandler(Protocol):
    """Addressing, records, ciphertexts, negotiation steps and standing requests of one peer's market."""

    def peer_for(self, public_key: bytes) -> IPv8Peer | None:
        """The IPv8 peer with TrustChain key ``public_key``, if its address is known."""

    def known_public_keys(self) -> Sequence[bytes]:
        """TrustChain keys of every peer we can reach."""

    def first_gap(self, public_key: bytes) -> int:
        """The first sequence number of that chain we lack."""

    def own_records(self, since: int) -> Sequence[HalfBlock]:
        """Our market records from sequence number ``since``."""

    def receive_record(self, block: HalfBlock) -> bool:
        """A gossiped market record (decoded, of a record type, not yet validated); False if invalid."""

    def ciphertext(self, cid: str) -> bytes | None:
        """The ciphertext of one of our listings, or None: we serve nothing else."""

    def receive_step(self, sender: bytes, data: bytes) -> None:
        """An encoded negotiation step from an authenticated ``sender``."""

    def receive_request(self, data: bytes) -> None:
        """An encoded standing request relayed to us (its signature not yet checked)."""
