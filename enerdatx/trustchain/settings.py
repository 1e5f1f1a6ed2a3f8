"""Settings of the TrustChain community: the ledger it serves and its network knobs.

Retries, packet size and rate limits are the fields every overlay has (:class:`OverlaySettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from enerdatx.errors import ConfigurationError
from enerdatx.overlay import OverlaySettings

if TYPE_CHECKING:
    from enerdatx.trustchain import TrustChain


class TrustChainSettings(OverlaySettings):
    """What a :class:`~enerdatx.trustchain.community.TrustChainCommunity` is given at birth."""

    ledger: TrustChain | None = None
    """The peer's ledger; the community only moves its blocks, the ledger decides on them."""

    crawl_timeout: float = 5.0
    """Seconds a crawl may take, retries included."""

    crawl_page_size: int = 64
    """Most blocks one crawl answer carries; longer ranges are fetched page by page."""

    crawl_answer_rate: float = 262_144.0
    crawl_answer_burst: int = 1_048_576
    """Bytes of crawl answers sent to one address per second, and at once: its requests beyond
    that are dropped ("crawl_budget") until the debt is paid. A UDP request's address can be
    forged, and a 215-byte request bought a page of blocks (~20 KB) for any address, 1,000
    times a second. A crawl of one page never comes near it; 1 MiB is some 3,000 blocks."""

    gossip_fanout: int = 4
    """Random peers a new half-block is pushed to."""

    gossip_ttl: int = 1
    """Hops a gossiped half-block travels (1: only the first fanout; forks are found by witnesses)."""

    witnesses: int = 4
    """Peers whose keys are closest to sha256(public key, sequence number) also get each new
    half-block: both halves of a fork reach the same witnesses, who then hold the proof."""

    received_commit_delay: float = 0.5
    """Seconds gossiped blocks of others may wait in the store's open transaction, so that one
    commit writes many (each peer of a 100-peer market hears about ten a second). A crash loses
    at most this much gossip, which its signers and witnesses still hold; our own blocks, and
    the batch before them, are committed before they are sent, whatever this says. 0 commits
    at the next turn of the event loop."""

    received_commit_blocks: int = 256
    """Uncommitted gossiped blocks that make the commit happen at once (bounds the open transaction)."""

    fraud_fanout: int = 8
    """Random peers a newly learned fraud proof is pushed to at once."""

    fraud_rounds: int = 6
    fraud_round_interval: float = 0.5
    fraud_round_fanout: int = 2
    """After the first push, ``fraud_rounds`` more pushes of ``fraud_round_fanout`` peers each,
    ``fraud_round_interval`` seconds apart, so lost packets do not stop the rumour."""

    seed_interval: float = 5.0
    """Seconds between walks to seed addresses that have not answered yet."""

    def check(self, name: str, value: Any) -> None:
        """As for every overlay, and a page or a commit of at least one block, a crawl answer burst of at
        least one byte, a delay of at most 60 s.

        A crawl_page_size of 0 asked for empty pages until the crawl timed out: no seller could
        countersign. received_commit_blocks 0 committed before any block was written, and a
        crawl_answer_burst of 0 would answer each address once, then never again.
        """
        super().check(name, value)
        if name in ("crawl_page_size", "received_commit_blocks", "crawl_answer_burst") and value < 1:
            raise ConfigurationError(f"TrustChainSettings {name} must be a whole number, 1 or more, not {value!r}")
        if name == "received_commit_delay" and value > 60:
            raise ConfigurationError(f"TrustChainSettings received_commit_delay must be 0 to 60 seconds, not {value!r}")
