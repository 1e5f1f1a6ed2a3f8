"""Rebuild a peer's own chain from the peers that hold it, after its database was lost.

Every counterparty holds our proposals to it and gossip spreads blocks further, so the
chain survives in the network in pieces. :func:`recover_chain` crawls our own public key
from every peer it is given, validates what comes back (signatures, hash links: a peer
cannot slip in a block we did not sign), fetches the proposals our agreements answer
(so income counts again), and only declares success when the chain is complete from 1
and reaches at least the sequence number that ``chain.head`` says we signed. The next
block is then signed after the highest block recovered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from enerdatx.datadir import mark_head, read_head
from enerdatx.errors import ChainIdentityError, PeerUnreachableError

if TYPE_CHECKING:
    from enerdatx.peer import Peer

__all__ = ["CATCHING_UP", "CatchUp", "Recovery", "catch_up", "recover_chain"]

CATCHING_UP = "catching_up: asking peers for blocks of this chain its database may lack"
"""Why a peer refuses to sign while it catches up (the reason its proposers get)."""


@dataclass(frozen=True)
class Recovery:
    """What a recovery got: the chain's length and which peers gave blocks."""

    public_key: bytes
    blocks: int
    expected: int  # from chain.head; 0 when there was none
    sources: dict[str, int]  # peer key (hex) -> blocks of our chain it gave

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "public_key": self.public_key.hex(), "blocks": self.blocks,
            "expected": self.expected, "sources": self.sources,
        }


async def _known_peers(peer: Peer, wanted: int, timeout: float) -> list[bytes]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        keys = peer.community.known_public_keys()
        if len(keys) >= wanted or loop.time() >= deadline:
            return keys
        await asyncio.sleep(0.05)  # introductions arrive as the walk answers; nothing to await


async def recover_chain(peer: Peer, *, wanted_peers: int = 1, timeout: float = 10.0) -> Recovery:
    """Crawl our own chain back from the peers we know (waiting up to ``timeout`` for ``wanted_peers``)."""
    community, store, own = peer.community, peer.store, peer.public_key
    marker = read_head(peer.directory)
    expected = marker.sequence_number if marker is not None else 0
    page = community.settings.crawl_page_size
    sources: dict[str, int] = {}
    for key in await _known_peers(peer, wanted_peers, timeout):
        source = community.peer_for(key)
        if source is None:
            continue
        start, gave = 1, 0
        try:
            while True:
                blocks = await community.crawl(own, start, start + page - 1, peer=source)
                gave += len(blocks)
                if not blocks and start > max(expected, store.latest_sequence_number(own)):
                    break
                start += page
            # Income counts only with the payer's proposal held: fetch what our agreements answer.
            for block in store.chain(own):
                if not block.is_proposal and store.linked(block) is None:
                    await community.crawl(
                        block.link_public_key, block.link_sequence_number, block.link_sequence_number, peer=source
                    )
        except PeerUnreachableError:
            pass  # the others may hold what this one would have given
        sources[key.hex()] = gave
    held = store.latest_sequence_number(own)
    present = store.held_sequence_numbers(own, 1, held)
    if not sources:
        raise ChainIdentityError("no peer answered: give peers that hold this chain with --peer or --contact")
    if held < expected or len(present) != held:
        missing = sorted(set(range(1, max(held, expected) + 1)) - set(present))
        shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
        raise ChainIdentityError(
            f"recovered {len(present)} of {max(held, expected)} blocks; no peer asked holds blocks {shown}: "
            f"ask more peers (--peer), or restore a backup",
            path=peer.directory,
        )
    if held:
        mark_head(peer.directory, peer.identity, store)
    return Recovery(own, held, expected, sources)


@dataclass(frozen=True)
class CatchUp:
    """What a start-up check against peers found: our own blocks they held and we did not."""

    held: int  # our latest block before (0: none)
    head: int  # our latest block after
    fetched: int  # own blocks the peers gave that we lacked
    asked: int  # peers that answered

    def as_dict(self) -> dict[str, int]:
        """JSON-ready."""
        return {"held": self.held, "head": self.head, "fetched": self.fetched, "asked": self.asked}


async def catch_up(peer: Peer, *, wanted_peers: int, timeout: float) -> CatchUp:
    """Before signing anything: fetch the blocks of our own chain above the latest we hold from the
    peers we know (waiting up to ``timeout`` for ``wanted_peers`` of them).

    ``chain.head`` only says how far the chain reached at the last clean stop. A database copied
    without its ``-wal``, or restored from an old copy, after a crash, lacks the newest blocks
    while the marker is older, and the next block would take a place the counterparties already
    hold another block at. Every counterparty holds our half of each pair (and gossip spreads it
    further), so they tell us; the ledger then signs after the highest block they gave. Run
    inside ``peer.ledger.signing_held(...)`` so that nothing is signed meanwhile.
    """
    community, store, own = peer.community, peer.store, peer.public_key
    held = store.latest_sequence_number(own)
    fetched, asked = 0, 0
    for key in await _known_peers(peer, wanted_peers, timeout):
        source = community.peer_for(key)
        if source is None:
            continue
        latest = store.latest_sequence_number(own)
        try:
            blocks = await community.crawl(own, latest + 1, None, peer=source)
        except PeerUnreachableError:
            continue
        asked += 1
        fetched += len(blocks)
    head = store.latest_sequence_number(own)
    if head > held:
        mark_head(peer.directory, peer.identity, store)  # a later start without peers knows it too
    return CatchUp(held, head, fetched, asked)
