"""The peers panel: start and stop local peers, see their identities, balances and connections."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd

from .panel import Panel
from .tables import frame_html, peer_name

if TYPE_CHECKING:
    from enerdatx.lab import Lab
    from enerdatx.peer import Peer

__all__ = ["PeersPanel", "peers_frame"]


def peers_frame(peers: list[Peer]) -> pd.DataFrame:
    """One row per peer: name, key, address, contacts, own chain length and (with a market) balance."""
    rows = []
    for peer in peers:
        market = peer.market if peer.has_market else None
        rows.append(
            {
                "peer": peer_name(peer),
                "public_key": peer.public_key.hex()[:16],
                "address": f"{peer.address[0]}:{peer.address[1]}",
                "contacts": len(peer.community.contacts),
                "blocks": peer.store.latest_sequence_number(peer.public_key),
                "balance": market.balance().available if market is not None else None,
            }
        )
    return pd.DataFrame(rows, columns=["peer", "public_key", "address", "contacts", "blocks", "balance"])


class PeersPanel(Panel):
    """Start more peers in a Lab, stop them all, and list them."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.count = widgets.BoundedIntText(value=3, min=1, max=200, description="Peers", layout={"width": "160px"})
        self.start_button = widgets.Button(description="Start peers", icon="play", button_style="primary")
        self.stop_button = widgets.Button(description="Stop all", icon="stop")
        self.start_button.add_class("edx-start-peers")
        self.table = widgets.HTML()
        super().__init__("Peers", [widgets.HBox([self.count, self.start_button, self.stop_button]), self.table])
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.refresh()

    def start(self, n: int | None = None) -> asyncio.Task[list[Peer] | None]:
        """Start ``n`` more peers (default: the count box), one at a time with a progress bar; a task."""
        n = self.count.value if n is None else n

        async def start() -> list[Peer]:
            try:
                with self.working("Starting peers", n) as advance:
                    for _ in range(n):
                        await self.lab.start(1)
                        advance()
            finally:  # the peers started before one failed run: the table and the other panels show them
                self.refresh()
                self.changed()
            self.show_info(f"{len(self.lab.peers)} peers running")
            return list(self.lab.peers)

        return self.attempt_async(start, group="peers")

    def stop(self) -> asyncio.Task[None]:
        """Stop every peer; a task."""

        async def stop() -> None:
            await self.lab.stop()
            self.refresh()
            self.show_info("all peers stopped")
            self.changed()

        # One at a time: a Stop all during a start stopped the peers up so far, and the start ran on.
        return self.attempt_async(stop, group="peers")

    def refresh(self) -> None:
        """Read the peers again."""
        self.table.value = frame_html(peers_frame(self.lab.peers), "edx-peers", empty="no peers running", index=False)
